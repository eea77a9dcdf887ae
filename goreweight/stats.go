package goreweight

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/goreweight/goreweight/goreweight/internal/jsonx"
)

// Stats describe one batch's weights, ready to log. Loss statistics are
// unweighted unless named otherwise; all are computed in float64. "M" in the
// weight statistics is Valid, the number of samples with a finite loss, so
// that uniform weights give MaxWM = MinWM = 1 and ESSFrac = 1.
type Stats struct {
	Step int64   `json:"step"` // global step the weights were computed for
	R    float64 `json:"r"`    // temperature used; +Inf during a uniform warm-up
	// Uniform is true when the weights are uniform by construction: the
	// uniform strategy, a warm-up step, or losses too close to normalise.
	Uniform   bool    `json:"uniform"`
	M         int     `json:"m"`             // batch size
	Valid     int     `json:"valid"`         // samples with a finite loss
	NonFinite int     `json:"nonfinite"`     // samples with a NaN or ±Inf loss (weight 0)
	MaxWM     float64 `json:"max_wm"`        // max_i w_i · Valid
	MinWM     float64 `json:"min_wm"`        // min_i w_i · Valid over finite samples
	ESS       float64 `json:"ess"`           // effective sample size 1/Σw²
	ESSFrac   float64 `json:"ess_frac"`      // ESS / Valid
	Entropy   float64 `json:"entropy"`       // -Σ w log w in nats; log(Valid) when uniform
	LossMin   float64 `json:"loss_min"`      // over finite losses
	LossMax   float64 `json:"loss_max"`      // over finite losses
	LossMean  float64 `json:"loss_mean"`     // unweighted mean of finite losses
	Weighted  float64 `json:"loss_weighted"` // Σ w_i l_i, the training loss
	Capped    int     `json:"capped"`        // samples whose weight the cap lowered
	// Domains holds one entry per distinct domain id of the batch, in
	// increasing id order, when domain ids were given (ids that do not
	// occur have no entry, so its length is the number of distinct ids,
	// however large the ids are).
	Domains []DomainStats `json:"domains,omitempty"`
}

// DomainStats describe the samples of one domain in one batch.
type DomainStats struct {
	ID         int32   `json:"id"`          // the domain id
	Count      int     `json:"count"`       // samples of this domain
	NonFinite  int     `json:"nonfinite"`   // of which with a non-finite loss
	MeanLoss   float64 `json:"mean_loss"`   // unweighted mean of the finite losses; NaN if none
	WeightSum  float64 `json:"weight_sum"`  // Σ w over the domain
	MeanWeight float64 `json:"mean_weight"` // WeightSum / Count
	MeanWM     float64 `json:"mean_wm"`     // MeanWeight · Valid: 1 when the domain gets its uniform share
}

// Flat returns the statistics as one flat map of floats, ready for any
// logger: the field names of the JSON form, and "domain/<id>/<field>" for
// each domain that occurred in the batch. Booleans are 0 or 1.
func (s *Stats) Flat() map[string]float64 {
	m := map[string]float64{
		"step": float64(s.Step), "r": s.R, "uniform": b2f(s.Uniform),
		"m": float64(s.M), "valid": float64(s.Valid), "nonfinite": float64(s.NonFinite),
		"max_wm": s.MaxWM, "min_wm": s.MinWM, "ess": s.ESS, "ess_frac": s.ESSFrac,
		"entropy": s.Entropy, "loss_min": s.LossMin, "loss_max": s.LossMax,
		"loss_mean": s.LossMean, "loss_weighted": s.Weighted, "capped": float64(s.Capped),
	}
	for _, d := range s.Domains {
		p := "domain/" + strconv.Itoa(int(d.ID)) + "/"
		m[p+"count"] = float64(d.Count)
		m[p+"nonfinite"] = float64(d.NonFinite)
		m[p+"mean_loss"] = d.MeanLoss
		m[p+"weight_sum"] = d.WeightSum
		m[p+"mean_weight"] = d.MeanWeight
		m[p+"mean_wm"] = d.MeanWM
	}
	return m
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// nan is returned for means over nothing.
var nan = math.NaN()

// MarshalJSON writes the statistics with the field names of their json
// tags; NaN and ±Inf become null (Flat keeps them as floats).
func (s Stats) MarshalJSON() ([]byte, error) {
	type domain struct {
		ID         int32       `json:"id"`
		Count      int         `json:"count"`
		NonFinite  int         `json:"nonfinite"`
		MeanLoss   jsonx.Float `json:"mean_loss"`
		WeightSum  jsonx.Float `json:"weight_sum"`
		MeanWeight jsonx.Float `json:"mean_weight"`
		MeanWM     jsonx.Float `json:"mean_wm"`
	}
	out := struct {
		Step      int64       `json:"step"`
		R         jsonx.Float `json:"r"`
		Uniform   bool        `json:"uniform"`
		M         int         `json:"m"`
		Valid     int         `json:"valid"`
		NonFinite int         `json:"nonfinite"`
		MaxWM     jsonx.Float `json:"max_wm"`
		MinWM     jsonx.Float `json:"min_wm"`
		ESS       jsonx.Float `json:"ess"`
		ESSFrac   jsonx.Float `json:"ess_frac"`
		Entropy   jsonx.Float `json:"entropy"`
		LossMin   jsonx.Float `json:"loss_min"`
		LossMax   jsonx.Float `json:"loss_max"`
		LossMean  jsonx.Float `json:"loss_mean"`
		Weighted  jsonx.Float `json:"loss_weighted"`
		Capped    int         `json:"capped"`
		Domains   []domain    `json:"domains,omitempty"`
	}{s.Step, jsonx.Float(s.R), s.Uniform, s.M, s.Valid, s.NonFinite, jsonx.Float(s.MaxWM), jsonx.Float(s.MinWM),
		jsonx.Float(s.ESS), jsonx.Float(s.ESSFrac), jsonx.Float(s.Entropy), jsonx.Float(s.LossMin), jsonx.Float(s.LossMax),
		jsonx.Float(s.LossMean), jsonx.Float(s.Weighted), s.Capped, nil}
	for _, d := range s.Domains {
		out.Domains = append(out.Domains, domain{d.ID, d.Count, d.NonFinite, jsonx.Float(d.MeanLoss),
			jsonx.Float(d.WeightSum), jsonx.Float(d.MeanWeight), jsonx.Float(d.MeanWM)})
	}
	return json.Marshal(out)
}
