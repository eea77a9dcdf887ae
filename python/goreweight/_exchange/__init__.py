"""Moving losses to Go and weights back. Nothing here computes weights:
every path ends in one call of the Go library. One module per job:

* :mod:`.go`: the two calls into Go (raw pointers, Arrow) and the Target
  (which Go object computes the weights).
* :mod:`.domains`: domain ids of any kind as a contiguous int32 array.
* :mod:`.torch_path`: torch tensors. CPU: a float32 contiguous input is read
  in place, others converted first (one copy); Go writes the weights straight
  into a fresh output. CUDA: one device-to-host copy into a reused pinned
  buffer, the Go call, one asynchronous host-to-device copy back.
* :mod:`.masked_path`: a dense (token-level) batch with a mask and a
  reference loss, by raw pointers; Go compacts, weights and scatters.
* :mod:`.numpy_path`: numpy arrays (raw pointers, as the torch CPU path), and
  masked arrays (masked entries are not data).
* :mod:`.arrow_path`: anything with ``__arrow_c_array__`` or
  ``__arrow_c_stream__``, through the Arrow C Data Interface; Go reads a
  float32 array without nulls in place and converts the rest.
"""

from __future__ import annotations

from .arrow_path import arrow_weights, is_arrow
from .domains import domains_array
from .go import Target, stats_dict
from .masked_path import go_masked, masked_available
from .numpy_path import numpy_weights
from .torch_path import check_losses_tensor, check_tensor_device, torch_weights

__all__ = [
    "Target",
    "arrow_weights",
    "check_losses_tensor",
    "check_tensor_device",
    "domains_array",
    "go_masked",
    "is_arrow",
    "masked_available",
    "numpy_weights",
    "stats_dict",
    "torch_weights",
]
