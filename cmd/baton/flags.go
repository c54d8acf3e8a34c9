package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// flagSet is a flag.FlagSet that also reads each flag from the environment
// (BATON_<FLAG>, the command line wins), accepts flags after positional
// arguments, and prints a usage that names each flag's variable.
type flagSet struct {
	*flag.FlagSet
	synopsis string // "baton drain WORKER [flags]"
	help     string
	// minArgs and maxArgs bound the positional arguments (maxArgs < 0: any).
	minArgs, maxArgs int
	out              io.Writer
	lookupEnv        func(string) (string, bool)
}

func newFlags(name, synopsis, help string, minArgs, maxArgs int) *flagSet {
	f := &flagSet{
		FlagSet:  flag.NewFlagSet(name, flag.ContinueOnError),
		synopsis: synopsis, help: strings.TrimSpace(help),
		minArgs: minArgs, maxArgs: maxArgs,
		out: os.Stdout, lookupEnv: os.LookupEnv,
	}
	f.SetOutput(io.Discard) // errors are returned
	// The flag package calls Usage on every parse error and on -h; parse
	// prints the usage itself for -h only (an error names --help instead).
	f.Usage = func() {}
	return f
}

// envName is the environment variable of a flag: BATON_ + upper snake case.
func envName(flagName string) string {
	return "BATON_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse parses args, then fills every flag not given on the command line from
// its environment variable, and returns the positional arguments. It returns
// flag.ErrHelp (after printing the usage) for -h/--help, and a usage error
// (exit code 2) for anything wrong.
func (f *flagSet) parse(args []string) ([]string, error) {
	var pos, tail []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, tail = args[:i], args[i+1:]
	}
	rest := args
	for {
		if err := f.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.printUsage(f.out)
				return nil, flag.ErrHelp
			}
			return nil, usageErrorf("%s: %v (see 'baton %s --help')", f.Name(), err, f.Name())
		}
		// flag stops at the first positional argument: take it and keep
		// parsing, so that flags may follow it.
		rest = f.Args()
		if len(rest) == 0 {
			break
		}
		pos, rest = append(pos, rest[0]), rest[1:]
	}
	pos = append(pos, tail...)
	set := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	var errs []error
	f.VisitAll(func(fl *flag.Flag) {
		if set[fl.Name] {
			return
		}
		env := envName(fl.Name)
		if v, ok := f.lookupEnv(env); ok {
			if err := f.Set(fl.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q (--%s): %v", env, v, fl.Name, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, usageErrorf("%s: %v", f.Name(), err)
	}
	if len(pos) < f.minArgs || (f.maxArgs >= 0 && len(pos) > f.maxArgs) {
		return nil, usageErrorf("usage: %s (see 'baton %s --help')", f.synopsis, f.Name())
	}
	return pos, nil
}

func (f *flagSet) printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n", f.synopsis)
	if f.help != "" {
		fmt.Fprintf(w, "\n%s\n", f.help)
	}
	fmt.Fprintf(w, "\nFlags (each also read from the environment variable shown; the command line wins):\n")
	f.VisitAll(func(fl *flag.Flag) {
		typ, usage := flag.UnquoteUsage(fl)
		if t, ok := fl.Value.(interface{ typeName() string }); ok && typ == "value" {
			typ = t.typeName()
		}
		head := "  --" + fl.Name
		if typ != "" {
			head += " " + typ
		}
		fmt.Fprintln(w, head)
		for _, line := range strings.Split(usage, "\n") {
			fmt.Fprintf(w, "      %s\n", line)
		}
		if def := fl.DefValue; def != "" && def != "false" && def != "0" && def != "0s" && def != "[]" {
			fmt.Fprintf(w, "      default: %s\n", def)
		}
		fmt.Fprintf(w, "      env: %s\n", envName(fl.Name))
	})
}

// stringList is a repeatable flag; each value may also hold several
// comma-separated items (so one environment variable can carry a list).
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// bounded is a numeric or duration flag that accepts only values in [lo, hi].
// A value out of range is a usage error that names the flag: never silently a
// default. Where 0 means something (none, the default), the range includes it
// and the flag's usage says what it means; elsewhere 0 is refused and the
// default is had by leaving the flag unset.
type bounded[T int | int64 | uint32 | uint64 | time.Duration] struct {
	p      *T
	lo, hi T
	// top is T's largest value: hi == top means no upper bound.
	top   T
	parse func(string) (T, error)
	typ   string // the placeholder --help shows: "duration", "int", ...
}

func (b *bounded[T]) String() string {
	if b == nil || b.p == nil {
		return ""
	}
	return fmt.Sprint(*b.p)
}

func (b *bounded[T]) Set(s string) error {
	v, err := b.parse(s)
	if err != nil || v < b.lo || v > b.hi {
		return fmt.Errorf("must be %s", b.rangeText())
	}
	*b.p = v
	return nil
}

// typeName is the placeholder printUsage shows for the flag's value.
func (b *bounded[T]) typeName() string { return b.typ }

// rangeText says which values the flag accepts: "> 0", ">= 10", "1 to 1000".
func (b *bounded[T]) rangeText() string {
	switch {
	case b.typ == "duration" && b.lo == 1 && b.hi == b.top:
		return "> 0"
	case b.typ == "duration" && b.lo == 1:
		return fmt.Sprintf("> 0 and at most %v", b.hi)
	case b.hi == b.top:
		return fmt.Sprintf(">= %v", b.lo)
	}
	return fmt.Sprintf("%v to %v", b.lo, b.hi)
}

// addBounded registers a bounded flag whose usage ends with its range.
func addBounded[T int | int64 | uint32 | uint64 | time.Duration](f *flagSet, p *T, name string, def, lo, hi, top T,
	parse func(string) (T, error), typ, usage string) {
	*p = def
	b := &bounded[T]{p: p, lo: lo, hi: hi, top: top, parse: parse, typ: typ}
	f.Var(b, name, usage+"\nrange: "+b.rangeText())
}

// noMax is the upper bound of a duration flag without one.
const noMax = time.Duration(math.MaxInt64)

// durationVar registers a duration flag that accepts lo to hi (noMax: no upper
// bound; lo 1ns: any positive duration).
func (f *flagSet) durationVar(p *time.Duration, name string, def, lo, hi time.Duration, usage string) {
	addBounded(f, p, name, def, lo, hi, noMax, time.ParseDuration, "duration", usage)
}

// positiveDurationVar registers a duration flag that must be > 0.
func (f *flagSet) positiveDurationVar(p *time.Duration, name string, def time.Duration, usage string) {
	f.durationVar(p, name, def, 1, noMax, usage)
}

// intVar registers an int flag that accepts lo to hi (math.MaxInt: no upper
// bound).
func (f *flagSet) intVar(p *int, name string, def, lo, hi int, usage string) {
	addBounded(f, p, name, def, lo, hi, math.MaxInt, func(s string) (int, error) {
		v, err := strconv.ParseInt(s, 10, 0)
		return int(v), err
	}, "int", usage)
}

// int64Var registers an int64 flag that accepts lo to hi.
func (f *flagSet) int64Var(p *int64, name string, def, lo, hi int64, usage string) {
	addBounded(f, p, name, def, lo, hi, math.MaxInt64, func(s string) (int64, error) {
		return strconv.ParseInt(s, 10, 64)
	}, "int", usage)
}

// uint32Var registers a uint32 flag that accepts lo to hi. A value beyond
// uint32 is out of range, not wrapped (4294967297 is not 1).
func (f *flagSet) uint32Var(p *uint32, name string, def, lo, hi uint32, usage string) {
	addBounded(f, p, name, def, lo, hi, math.MaxUint32, func(s string) (uint32, error) {
		v, err := strconv.ParseUint(s, 10, 32)
		return uint32(v), err
	}, "uint", usage)
}

// uint64Var registers a uint64 flag that accepts lo to hi.
func (f *flagSet) uint64Var(p *uint64, name string, def, lo, hi uint64, usage string) {
	addBounded(f, p, name, def, lo, hi, math.MaxUint64, func(s string) (uint64, error) {
		return strconv.ParseUint(s, 10, 64)
	}, "uint", usage)
}
