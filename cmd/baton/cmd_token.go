package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/fsm"
)

const tokenUsage = "baton token new-key | baton token issue --worker ID --key-file FILE"

const tokenHelp = `Derived worker tokens: every server started with --worker-token-key FILE
accepts, for each worker, the token 'baton token issue' derives from that key, so
adding a worker needs no server restart. A worker token acts only for its
worker: it cannot report for, heartbeat as or register another worker.

  new-key  print a fresh random key (32 bytes, hex) to stdout
  issue    print a worker's token, derived from the key file

Example:
  baton token new-key > worker-token.key      # keep it secret; give it to every server
  baton server --worker-token-key worker-token.key ...
  baton worker --worker-id w1 --token "$(baton token issue --worker w1 --key-file worker-token.key)" ...`

// runToken serves 'baton token': creating keys and issuing worker tokens. It
// needs no cluster: tokens are derived from the key alone.
func runToken(args []string) error { return tokenCmd(args, os.Stdout) }

func tokenCmd(args []string, out io.Writer) error {
	if len(args) == 0 {
		return usageErrorf("usage: %s", tokenUsage)
	}
	switch args[0] {
	case "new-key":
		return tokenNewKey(args[1:], out)
	case "issue":
		return tokenIssue(args[1:], out)
	case "-h", "--help", "-help", "help":
		fmt.Fprintf(out, "Usage: %s\n\n%s\n\nRun 'baton token issue --help' for flags.\n", tokenUsage, tokenHelp)
		return nil
	}
	return usageErrorf("unknown 'token' verb %q; usage: %s", args[0], tokenUsage)
}

func tokenNewKey(args []string, out io.Writer) error {
	f := newFlags("token new-key", "baton token new-key > FILE", `
Prints a fresh worker token key: 32 random bytes in hex, one line. Store it in a
file only the servers and the token issuer can read, and start every server with
--worker-token-key FILE. Changing the key revokes every token derived from the
old one.`, 0, 0)
	f.out = out
	if _, err := f.parse(args); err != nil {
		return err
	}
	key := make([]byte, server.MinWorkerTokenKeyLen)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("token new-key: %w", err)
	}
	_, err := fmt.Fprintln(out, hex.EncodeToString(key))
	return err
}

func tokenIssue(args []string, out io.Writer) error {
	f := newFlags("token issue", "baton token issue --worker ID --key-file FILE", `
Prints the bearer token of one worker, derived from the key in FILE (made by
'baton token new-key'). Servers started with --worker-token-key FILE accept it
for that worker only. Issuing it again prints the same token.`, 0, 0)
	f.out = out
	var worker, keyFile string
	f.StringVar(&worker, "worker", "", "the worker id the token acts for (required)")
	f.StringVar(&keyFile, "key-file", "", "the worker token key file (required)")
	if _, err := f.parse(args); err != nil {
		return err
	}
	if worker == "" || keyFile == "" {
		return usageErrorf("token issue needs --worker and --key-file")
	}
	if err := fsm.CheckWorkerID(fsm.WorkerID(worker)); err != nil {
		return usageErrorf("--worker: %v", err)
	}
	key, err := server.LoadWorkerTokenKey(keyFile)
	if err != nil {
		return usageErrorf("--key-file: %v", err)
	}
	tok, err := server.WorkerToken(key, fsm.WorkerID(worker))
	if err != nil {
		return fmt.Errorf("token issue: %w", err)
	}
	_, err = fmt.Fprintln(out, tok)
	return err
}
