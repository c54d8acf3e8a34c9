package placement_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/batonhq/baton/controller/placement"
)

func TestValidate(t *testing.T) {
	ok := func() placement.Input {
		return placement.Input{
			Config:     placement.DefaultConfig(),
			Workers:    []W{{ID: "a", Weight: 1, Eligible: true}, {ID: "b", Weight: 2}},
			Partitions: []P{{ID: "p1", Weight: 1, Owner: "a"}, {ID: "p2", Weight: 3}},
		}
	}
	cases := []struct {
		name   string
		mutate func(*placement.Input)
		want   []string // substrings of the error; nil means valid
	}{
		{"valid input", func(*placement.Input) {}, nil},
		{"zero config is valid", func(in *placement.Input) { in.Config = placement.Config{} }, nil},
		{"pin, owner and handoff to unknown workers are allowed", func(in *placement.Input) {
			in.Partitions[0].Pinned, in.Partitions[0].Owner, in.Partitions[0].InFlightTo = "ghost", "ghost", "ghost"
		}, nil},
		{"duplicate worker", func(in *placement.Input) { in.Workers[1].ID = "a" }, []string{`Workers[1].ID: duplicate "a" (also Workers[0])`}},
		{"empty worker id", func(in *placement.Input) { in.Workers[0].ID = "" }, []string{"Workers[0].ID: empty"}},
		{"zero worker weight", func(in *placement.Input) { in.Workers[1].Weight = 0 }, []string{`Workers[1].Weight: must be >= 1 (worker "b")`}},
		{"duplicate partition", func(in *placement.Input) { in.Partitions[1].ID = "p1" }, []string{`Partitions[1].ID: duplicate "p1"`}},
		{"empty partition id", func(in *placement.Input) { in.Partitions[1].ID = "" }, []string{"Partitions[1].ID: empty"}},
		{"zero partition weight", func(in *placement.Input) { in.Partitions[0].Weight = 0 }, []string{`Partitions[0].Weight: must be >= 1 (partition "p1")`}},
		{"negative slack", func(in *placement.Input) { in.Config.Slack = -1 }, []string{"Config.Slack"}},
		{"NaN slack", func(in *placement.Input) { in.Config.Slack = math.NaN() }, []string{"Config.Slack"}},
		{"huge slack", func(in *placement.Input) { in.Config.Slack = 1e9 }, []string{"Config.Slack"}},
		{"every problem is reported", func(in *placement.Input) {
			in.Workers[0].Weight, in.Partitions[1].Weight = 0, 0
		}, []string{"Workers[0].Weight", "Partitions[1].Weight"}},
		{"error count is capped", func(in *placement.Input) {
			in.Partitions = unassigned(100)
			for i := range in.Partitions {
				in.Partitions[i].Weight = 0
			}
		}, []string{"Partitions[19].Weight", "80 more problems not shown"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := ok()
			tc.mutate(&in)
			err := in.Validate()
			_, planErr := placement.BoundedRendezvous{}.Plan(in)
			if (err == nil) != (planErr == nil) {
				t.Fatalf("Validate %v but Plan %v", err, planErr)
			}
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, placement.ErrInvalid) {
				t.Fatalf("error %v, want one wrapping ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			var fe *placement.FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Errorf("error %v carries no FieldError", err)
			}
		})
	}
}
