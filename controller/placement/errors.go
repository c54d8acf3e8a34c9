package placement

import (
	"errors"
	"fmt"
	"math"
)

// ErrInvalid is wrapped by every validation error, so callers can test
// errors.Is(err, ErrInvalid) without caring which field was wrong.
var ErrInvalid = errors.New("placement: invalid input")

// FieldError reports one invalid field. Field is a path into Input such as
// "Workers[3].Weight" or "Config.Slack", so an operator can find the
// offending entry in a large dump.
type FieldError struct {
	Field   string
	Problem string
}

// Error implements error.
func (e *FieldError) Error() string {
	return "placement: " + e.Field + ": " + e.Problem
}

// Unwrap lets errors.Is match ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// maxSlack keeps Slack*1000*weight inside uint64 (see slackMilli) while
// being far beyond any useful setting.
const maxSlack = 1 << 20

// Validate checks the config. The zero Config is valid (Slack 0 is the
// tightest bound); use DefaultConfig for the documented default.
func (c Config) Validate() error {
	if math.IsNaN(c.Slack) || c.Slack < 0 || c.Slack > maxSlack {
		return &FieldError{Field: "Config.Slack", Problem: fmt.Sprintf("must be in [0, %d], got %v", maxSlack, c.Slack)}
	}
	return nil
}

// Validate checks the whole input and returns every problem found, joined,
// in input order. Duplicate IDs are rejected because the plan keys
// everything by ID; a pin or in-flight target naming an unknown worker is
// not an error (it is treated as ineligible), because membership changes
// race with the claim store.
func (in Input) Validate() error {
	var errs []error
	if err := in.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	workers := make(map[WorkerID]int, len(in.Workers))
	for i, w := range in.Workers {
		f := lazyField("Workers", i)
		if w.ID == "" {
			errs = append(errs, &FieldError{Field: f(".ID"), Problem: "empty"})
		} else if j, dup := workers[w.ID]; dup {
			errs = append(errs, &FieldError{Field: f(".ID"), Problem: fmt.Sprintf("duplicate %q (also Workers[%d])", w.ID, j)})
		} else {
			workers[w.ID] = i
		}
		if w.Weight == 0 {
			errs = append(errs, &FieldError{Field: f(".Weight"), Problem: fmt.Sprintf("must be >= 1 (worker %q)", w.ID)})
		}
	}
	parts := make(map[PartitionID]int, len(in.Partitions))
	for i, p := range in.Partitions {
		f := lazyField("Partitions", i)
		if p.ID == "" {
			errs = append(errs, &FieldError{Field: f(".ID"), Problem: "empty"})
		} else if j, dup := parts[p.ID]; dup {
			errs = append(errs, &FieldError{Field: f(".ID"), Problem: fmt.Sprintf("duplicate %q (also Partitions[%d])", p.ID, j)})
		} else {
			parts[p.ID] = i
		}
		if p.Weight == 0 {
			errs = append(errs, &FieldError{Field: f(".Weight"), Problem: fmt.Sprintf("must be >= 1 (partition %q)", p.ID)})
		}
	}
	if len(errs) > maxReported {
		more := len(errs) - maxReported
		errs = append(errs[:maxReported], fmt.Errorf("%w: %d more problems not shown", ErrInvalid, more))
	}
	return errors.Join(errs...)
}

// maxReported caps the joined error so a wholly broken input of 100k
// partitions does not produce a megabyte of error text.
const maxReported = 20

// lazyField formats a field path only when there is an error to report;
// formatting it eagerly was most of Validate's cost on 100k partitions.
func lazyField(slice string, i int) func(suffix string) string {
	return func(suffix string) string { return fmt.Sprintf("%s[%d]%s", slice, i, suffix) }
}
