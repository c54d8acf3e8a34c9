package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
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
	f.SetOutput(io.Discard) // errors are returned; usage goes to out
	f.Usage = func() { f.printUsage(f.out) }
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
				errs = append(errs, fmt.Errorf("%s: %v", env, err))
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
