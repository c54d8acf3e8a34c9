package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/natstest"
)

// Tokens of the console tests' servers (--token-file), one per role and one
// per worker.
const (
	consoleOpToken   = "console-operator-secret-0123"
	consoleReadToken = "console-read-only-secret-0123"
)

func consoleWorkerToken(w fsm.WorkerID) string { return "console-worker-secret-" + string(w) + "-0123" }

// screenshotsEnv names the variable that makes the console tests write their
// screenshots to docs/ (BATON_SCREENSHOTS=1); otherwise they write none.
const screenshotsEnv = "BATON_SCREENSHOTS"

// TestE2E_Console drives the operator console (/ui) in headless Chromium
// against three `baton server` processes and three `baton worker`
// processes on an embedded nats-server. The page is served by a follower.
// It checks that an operator's move made on the page happens and shows in
// the grid (the cell's owner changes), the handoff timeline and the audit
// stream; that the same kind of action with a read-only token is refused
// (the error is shown with its code, and the state does not change); and
// that after the leader is killed with SIGKILL the page keeps updating from
// its node and a move made on it still works.
func TestE2E_Console(t *testing.T) {
	needBinary(t)
	ns := natstest.Start(t)
	_, js := natstest.Connect(t, ns.URL())
	natstest.CreateStream(t, js, "ORDERS", jetstream.LimitsPolicy, "orders.>")
	workerIDs := []fsm.WorkerID{"w1", "w2", "w3"}
	tokens := writeConsoleTokens(t, workerIDs)
	servers := startServersToken(t, consoleReadToken, 3, "--token-file", tokens, "--digest-interval", "1s")
	addr := strings.Join(urls(servers), ",")
	c := newClient(t, urls(servers), client.WithToken(consoleOpToken))
	cli(t, "partitions", "declare", "--addr", addr, "--token", consoleOpToken,
		"--template", "orders.{{.Partition}}.>", "--prefix", "p-", "--count", "48")

	workers := map[fsm.WorkerID]*proc{}
	for _, id := range workerIDs {
		p := start(t, string(id), "worker", "--worker-id", string(id), "--nats", ns.URL(), "--stream", "ORDERS",
			"--addr", addr, "--token", consoleWorkerToken(id), "--checkpoint-interval", "200ms", "--handler", "count",
			"--report-interval", "0", "--health-addr", "127.0.0.1:0", "--log-format", "json")
		workers[id] = p
		health := str(p.waitLog("health listening")["health_addr"])
		eventually(t, string(id)+" ready", func() error { return probe("http://" + health + "/readyz") })
	}
	settled(t, c, workerIDs...)

	leader := leaderOf(t, servers)
	var follower *server
	for _, s := range servers {
		if s != leader {
			follower = s
			break
		}
	}
	t.Logf("leader %s; the page is served by follower %s", leader.id, follower.id)

	b := newBrowser(t, follower.url)
	b.do(chromedp.EmulateViewport(1280, 860))
	b.do(chromedp.Navigate(follower.url + "/ui/"))
	b.useToken(consoleOpToken)
	b.waitJS("the grid lists 48 partitions", `document.getElementById('grid-stats').dataset.count === '48'`)

	// An operator's move, made on the page, shows in the grid.
	part := fsm.PartitionID("p-07")
	from := ownerOf(t, c, part)
	to := otherWorker(workerIDs, from)
	b.selectPartition(part)
	b.waitJS("the detail of "+string(part)+" names its owner", fmt.Sprintf(`document.getElementById('d-owner')?.dataset.owner === %q`, from))
	plan := b.confirm(fmt.Sprintf(`document.getElementById('move-to').value = %q; document.getElementById('move-btn').click()`, to))
	if !strings.Contains(plan, "plan:") {
		t.Errorf("the confirmation shows no dry run: %q", plan)
	}
	b.js(`document.getElementById('confirm-ok').click()`)
	b.waitJS("the dialog closes after the move", `!document.getElementById('confirm').open`)
	b.waitJS(fmt.Sprintf("the grid shows %s active on %s", part, to),
		fmt.Sprintf(`document.getElementById('d-owner')?.dataset.owner === %q && document.getElementById('d-phase').textContent === 'active'`, to))
	if got := ownerOf(t, c, part); got != to {
		t.Fatalf("after the move on the page the cluster says %s owns %s, want %s", got, part, to)
	}
	hover := b.hoverCell(part)
	if !strings.Contains(hover, "owner "+string(to)) || !strings.Contains(hover, "epoch ") || !strings.Contains(hover, "resume after ") {
		t.Errorf("the cell's hover title is %q, want the owner %s, the epoch and the resume point", hover, to)
	}
	b.screenshot("grid")

	b.show("handoffs")
	b.waitJS("the timeline shows the move's handoff, activated",
		fmt.Sprintf(`!!document.querySelector('#h-rows tr[data-partition=%q][data-complete="1"]')`, part))
	t.Logf("handoff timeline: %s", b.text("#h-stats"))
	b.screenshot("handoffs")

	b.show("audit")
	b.js(fmt.Sprintf(`document.getElementById('a-partition').value = %q; document.querySelector('#audit-form button[type=submit]').click()`, part))
	b.waitJS("the audit stream shows the Committed event of the move",
		fmt.Sprintf(`!!document.querySelector('#audit-rows tr[data-type="Committed"][data-partition=%q]')`, part))
	b.js(`document.getElementById('a-partition').value = ''; document.querySelector('#audit-form button[type=submit]').click()`)
	b.waitJS("the unfiltered audit stream", `document.querySelectorAll('#audit-rows tr[data-type]').length > 10`)
	b.screenshot("audit")

	// A read-only token sees everything and changes nothing.
	b.useToken(consoleReadToken)
	b.show("workers")
	b.waitJS("the workers view lists w1", `!!document.querySelector('#w-rows button[data-drain="w1"]')`)
	b.confirm(`document.querySelector('#w-rows button[data-drain="w1"]').click()`)
	b.js(`document.getElementById('confirm-ok').click()`)
	b.waitJS("the refusal shown in the dialog", `document.getElementById('confirm-error').dataset.code === 'forbidden'`)
	t.Logf("read-only drain refused: %s", b.text("#confirm-error"))
	if e := b.text("#errors"); !strings.Contains(e, "forbidden (403)") {
		t.Errorf("the error bar shows %q, want the code and status forbidden (403)", e)
	}
	b.js(`document.getElementById('confirm-cancel').click()`)
	b.selectPartitionFrom("grid", part)
	b.confirm(fmt.Sprintf(`document.getElementById('move-to').value = %q; document.getElementById('move-btn').click()`, from))
	b.js(`document.getElementById('confirm-ok').click()`)
	b.waitJS("the refused move shown in the dialog", `document.getElementById('confirm-error').dataset.code === 'forbidden'`)
	b.js(`document.getElementById('confirm-cancel').click()`)
	wl, err := c.Workers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range wl.Workers {
		if w.Cordoned {
			t.Errorf("worker %s is cordoned after a drain with a read-only token", w.ID)
		}
	}
	if got := ownerOf(t, c, part); got != to {
		t.Fatalf("after a refused move %s is owned by %s, want still %s", part, got, to)
	}

	b.useToken(consoleOpToken)
	b.show("workers")
	b.waitJS("the workers view shows fair shares", `document.getElementById('plan-state').textContent.startsWith('dry run at index')`)
	b.screenshot("workers")
	b.show("cluster")
	b.waitJS("every node's applied index", `document.querySelectorAll('#c-rows td[data-applied]').length === 3`)
	b.waitJS("the corruption check's result", `document.getElementById('c-digest-result')?.dataset.result === 'agree'`)
	b.screenshot("cluster")

	// The leader dies; the page, served by a follower, goes on.
	t.Logf("SIGKILL the leader %s", leader.id)
	leader.crash()
	b.waitJS("the page names a new leader", fmt.Sprintf(
		`(() => { const t = document.getElementById('h-leader')?.textContent || ''; return t.startsWith('leader ') && t !== 'leader ' + %q })()`, leader.id))
	b.waitJS("the cluster view shows the dead leader unreachable",
		fmt.Sprintf(`document.querySelector('#c-rows tr[data-node=%q]')?.dataset.state === 'unreachable'`, leader.id))
	b.selectPartitionFrom("grid", part)
	b.confirm(fmt.Sprintf(`document.getElementById('move-to').value = %q; document.getElementById('move-btn').click()`, from))
	b.js(`document.getElementById('confirm-ok').click()`)
	b.waitJS("the dialog closes after the move", `!document.getElementById('confirm').open`)
	b.waitJS(fmt.Sprintf("the grid shows %s back on %s after the failover", part, from),
		fmt.Sprintf(`document.getElementById('d-owner')?.dataset.owner === %q && document.getElementById('d-phase').textContent === 'active'`, from))
	if got := ownerOf(t, c, part); got != from {
		t.Fatalf("after the failover and a move on the page %s is owned by %s, want %s", part, got, from)
	}
	b.check()

	for _, id := range workerIDs {
		workers[id].stop()
	}
	for _, s := range servers {
		if s != leader {
			s.stop()
		}
	}
}

// TestE2E_ConsoleGrid10k measures, in the browser, how long the grid takes
// to draw 10,000 partitions (performance.now around the render), on one
// `baton server` that holds them, owned by six workers that the test plays
// through the API (register, heartbeat, activate; no messages flow), with a
// few partitions pinned and a few still activating. The figure is logged;
// docs/benchmarks.md records it.
func TestE2E_ConsoleGrid10k(t *testing.T) {
	needBinary(t)
	const n = 10000
	servers := startServers(t, 1)
	s := servers[0]
	c := newClient(t, []string{s.url})
	cli(t, "partitions", "declare", "--addr", s.url, "--template", "orders.{{.Partition}}.>", "--prefix", "p-", "--count", strconv.Itoa(n))
	ws := playWorkers(t, c, 6)
	eventually(t, "every partition owned", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sum, err := c.Summary(ctx)
		if err != nil {
			return err
		}
		if un := sum.PartitionsByPhase[fsm.PhaseUnassigned]; un > 0 {
			return fmt.Errorf("%d unassigned", un)
		}
		return nil
	})
	// Activate all but every 97th partition; pin every 211th.
	for _, pw := range ws {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		a, _, err := c.Assignment(ctx, pw.id)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		var items []fsm.ActivateItem
		for _, p := range a.Partitions {
			num, _ := strconv.Atoi(strings.TrimPrefix(string(p.Partition), "p-"))
			if p.Phase == fsm.PhaseActivating && num%97 != 0 {
				items = append(items, fsm.ActivateItem{Partition: p.Partition, Epoch: p.Epoch})
			}
			if num%211 == 0 {
				if _, err := c.Pin(ctx, p.Partition, pw.id); err != nil {
					cancel()
					t.Fatal(err)
				}
			}
		}
		if _, err := c.Activated(ctx, pw.id, pw.inc, items); err != nil {
			cancel()
			t.Fatal(err)
		}
		cancel()
	}

	b := newBrowser(t, s.url)
	b.do(chromedp.EmulateViewport(1280, 860))
	b.do(chromedp.Navigate(s.url + "/ui/"))
	b.waitJS("the grid lists 10,000 owned partitions", fmt.Sprintf(`document.getElementById('grid-stats').dataset.count === '%d' && document.getElementById('grid-stats').dataset.frameMs !== ''
		&& !document.getElementById('legend').textContent.includes('unassigned (1')`, n))
	var first gridFigures
	b.eval(`(() => { const d = document.getElementById('grid-stats').dataset; return {render: +d.renderMs, frame: +d.frameMs, fetch: +d.fetchMs}; })()`, &first)
	// Redraws, as a filter change or a refresh does: the median of 9.
	var redraw []float64
	b.eval(`(() => { const out = []; const sel = document.getElementById('f-worker');
		for (let i = 0; i < 9; i++) { sel.value = i % 2 ? 'sim-1' : ''; sel.dispatchEvent(new Event('change')); out.push(window.batonConsole.render.ms); }
		sel.value = ''; sel.dispatchEvent(new Event('change'));
		return out.sort((a, b) => a - b); })()`, &redraw)
	hover := b.hoverCell("p-9999")
	if !strings.Contains(hover, "p-9999") || !strings.Contains(hover, "owner sim-") {
		t.Errorf("hover over the last cell shows %q", hover)
	}
	t.Logf("grid of %d partitions: fetched in %.0f ms (10 pages of 1000); first render %.1f ms (to the next frame %.1f ms); redraw median %.1f ms (min %.1f, max %.1f)",
		n, first.Fetch, first.Render, first.Frame, redraw[len(redraw)/2], redraw[0], redraw[len(redraw)-1])
	b.screenshot("grid-10k")
	b.check()
	s.stop()
}

// playedWorker is a worker the test plays through the API.
type playedWorker struct {
	id  fsm.WorkerID
	inc fsm.Incarnation
}

// playWorkers registers n workers (sim-1 …) and keeps their sessions alive
// with heartbeats until the test ends.
func playWorkers(t *testing.T, c *client.Client, n int) []playedWorker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	var out []playedWorker
	for i := 1; i <= n; i++ {
		id := fsm.WorkerID(fmt.Sprintf("sim-%d", i))
		rctx, rcancel := context.WithTimeout(ctx, timeout)
		reg, err := c.Register(rctx, api.RegisterRequest{Worker: id, Labels: []fsm.Label{{Key: "zone", Value: fmt.Sprintf("z%d", i%3)}}})
		rcancel()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, playedWorker{id: id, inc: reg.Incarnation})
		wg.Add(1)
		go func() {
			defer wg.Done()
			tk := time.NewTicker(time.Duration(reg.HeartbeatIntervalMS) * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tk.C:
				}
				hctx, hcancel := context.WithTimeout(ctx, 2*time.Second)
				_, _ = c.Heartbeat(hctx, id, reg.Incarnation) // a missed beat shows as an expiry, which the test would see
				hcancel()
			}
		}()
	}
	return out
}

type gridFigures struct {
	Render float64 `json:"render"`
	Frame  float64 `json:"frame"`
	Fetch  float64 `json:"fetch"`
}

// writeConsoleTokens writes the servers' token file: an operator, a
// read-only token and one worker token per worker.
func writeConsoleTokens(t *testing.T, workers []fsm.WorkerID) string {
	t.Helper()
	type tok struct {
		Name   string `json:"name,omitempty"`
		Role   string `json:"role"`
		Worker string `json:"worker,omitempty"`
		Token  string `json:"token"`
	}
	toks := []tok{{Name: "ops", Role: "operator", Token: consoleOpToken}, {Name: "viewer", Role: "read", Token: consoleReadToken}}
	for _, w := range workers {
		toks = append(toks, tok{Role: "worker", Worker: string(w), Token: consoleWorkerToken(w)})
	}
	data, err := json.Marshal(map[string]any{"tokens": toks})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func ownerOf(t *testing.T, c *client.Client, p fsm.PartitionID) fsm.WorkerID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	info, err := c.Partition(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	return info.Owner
}

func otherWorker(ws []fsm.WorkerID, not fsm.WorkerID) fsm.WorkerID {
	for _, w := range ws {
		if w != not {
			return w
		}
	}
	return ""
}

// chromium finds Debian's Chromium. Without it the browser tests fail: they
// are part of `make test`, and .ci/run installs the package.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium or chromium-browser on PATH: the console's browser tests need it (apt-get install -y chromium; .ci/run installs it)")
	return ""
}

// browser is one headless Chromium tab driven by a test. It records the
// page's uncaught exceptions and every request the page sends anywhere but
// its own origin; check fails the test on either.
type browser struct {
	t      *testing.T
	ctx    context.Context
	origin string

	mu       sync.Mutex // guards problems, written by chromedp's reader goroutine
	problems []string
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		_ = chromedp.Cancel(ctx) // closes the browser and waits for it
		cancel()
		acancel()
	})
	b := &browser{t: t, ctx: ctx, origin: u.Scheme + "://" + u.Host}
	if err := chromedp.Listen(ctx, b.onEvent); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

func (b *browser) onEvent(ev any) {
	var problem string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		problem = "uncaught exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			problem += " " + ev.ExceptionDetails.Exception.Description
		}
	case *network.EventRequestWillBeSent:
		if u := ev.Request.URL; !strings.HasPrefix(u, b.origin+"/") && !strings.HasPrefix(u, "data:") {
			problem = "request to another origin: " + u
		}
	}
	if problem != "" {
		b.mu.Lock()
		b.problems = append(b.problems, problem)
		b.mu.Unlock()
	}
}

// check fails the test if the page threw or reached beyond its origin.
func (b *browser) check() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Error(p)
	}
}

func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// eval evaluates expr in the page and decodes its value into out.
func (b *browser) eval(expr string, out any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr))
	if err != nil {
		b.t.Fatalf("browser: evaluate %s: %v", expr, err)
	}
	if out != nil {
		if err := json.Unmarshal(v, out); err != nil {
			b.t.Fatalf("browser: evaluate %s: %s: %v", expr, v, err)
		}
	}
}

// js runs statements in the page.
func (b *browser) js(stmts string) {
	b.t.Helper()
	b.eval("(() => { "+stmts+"; return true; })()", nil)
}

// text returns the text of the element sel selects ("" if none).
func (b *browser) text(sel string) string {
	b.t.Helper()
	var s string
	b.eval(fmt.Sprintf(`document.querySelector(%q)?.textContent ?? ''`, sel), &s)
	return s
}

// waitJS waits until the JavaScript expression cond is true, failing the
// test with what the page's error bar says if it does not become so.
func (b *browser) waitJS(what, cond string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		var errs string
		if ectx, ecancel := context.WithTimeout(b.ctx, 5*time.Second); true {
			errs, _ = chromedp.Run(ectx, chromedp.Evaluate[string](`document.getElementById('errors').innerText + ' | ' + document.getElementById('node-line').innerText`))
			ecancel()
		}
		b.t.Fatalf("browser: waiting for %s: %v (page says: %s)", what, err, errs)
	}
}

// useToken pastes token into the page's token field and submits it.
func (b *browser) useToken(token string) {
	b.t.Helper()
	b.js(fmt.Sprintf(`document.getElementById('token').value = %q; document.getElementById('token-use').click()`, token))
}

// show opens a view by its tab.
func (b *browser) show(view string) {
	b.t.Helper()
	b.js(fmt.Sprintf(`document.querySelector('#tabs button[data-view=%q]').click()`, view))
	b.waitJS("the "+view+" view", fmt.Sprintf(`!document.getElementById('view-%s').hidden`, view))
}

// selectPartition finds p with the grid's find box.
func (b *browser) selectPartition(p fsm.PartitionID) {
	b.t.Helper()
	b.js(fmt.Sprintf(`document.getElementById('find').value = %q; document.getElementById('find-go').click()`, p))
	b.waitJS("the detail of "+string(p), fmt.Sprintf(`document.getElementById('d-id')?.textContent === %q`, p))
}

func (b *browser) selectPartitionFrom(view string, p fsm.PartitionID) {
	b.t.Helper()
	b.show(view)
	b.selectPartition(p)
}

// confirm runs stmts, which open the confirmation of an action, waits for
// the dialog's dry run and returns it.
func (b *browser) confirm(stmts string) string {
	b.t.Helper()
	b.js(stmts)
	b.waitJS("the confirmation with the dry run", `document.getElementById('confirm').open && document.getElementById('confirm-plan').dataset.loaded !== ''`)
	plan := b.text("#confirm-plan")
	if !strings.HasPrefix(b.text("#confirm-ok"), "Confirm") {
		b.t.Fatal("no confirm button")
	}
	return plan
}

// hoverCell moves the mouse over p's cell in the grid and returns the
// canvas's hover title.
func (b *browser) hoverCell(p fsm.PartitionID) string {
	b.t.Helper()
	var at struct{ X, Y float64 }
	b.eval(fmt.Sprintf(`(() => { document.querySelector('#tabs button[data-view="grid"]').click();
		const c = document.getElementById('grid'); c.scrollIntoView({block: 'center'});
		const r = c.getBoundingClientRect(); const p = window.batonConsole.cellCenter(%q);
		return {X: r.left + p.x, Y: r.top + p.y}; })()`, p), &at)
	b.do(chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, at.X, at.Y, chromedp.ButtonNone))
	var title string
	b.eval(`document.getElementById('grid').title`, &title)
	return title
}

// screenshot writes the viewport as docs/console-<name>.png when
// BATON_SCREENSHOTS is set; normal runs write nothing.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	if os.Getenv(screenshotsEnv) == "" {
		return
	}
	b.js(`window.scrollTo(0, 0)`)
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join("..", "docs", "console-"+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(errors.Join(fmt.Errorf("screenshot %s", name), err))
	}
	b.t.Logf("wrote %s", path)
}
