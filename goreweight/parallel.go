package goreweight

// chunkSize is the number of samples one worker handles at a time. The
// partition, and so every float64 sum, depends only on M: results are
// identical whatever the number of threads (parallel.Job.For).
const chunkSize = 16384

// weigherTask is a Weigher seen as a parallel.Task, without exporting a
// method on Weigher; converting the pointer allocates nothing.
type weigherTask Weigher

func (t *weigherTask) RunChunk(c int) { (*Weigher)(t).runChunk(c) }

// parallelFor runs the current phase on chunks [0, nc).
func (w *Weigher) parallelFor(nc int) { w.job.For(nc, (*weigherTask)(w)) }
