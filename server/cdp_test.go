package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// devtools drives a headless Chromium over the DevTools protocol on a pipe (--remote-debugging-pipe:
// the browser reads commands from fd 3 and writes answers to fd 4, each a JSON message ended by a NUL),
// for what the command line cannot do, such as choosing a file in an <input type=file>.
type devtools struct {
	t       *testing.T
	w       io.Writer
	r       *bufio.Reader
	id      int
	session string // the page target's session (flattened sessions: sent in each message)
}

// openDevtools starts the browser and attaches to a new page at pageURL.
func openDevtools(t *testing.T, bin, pageURL string) *devtools {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	toBrowser, cmdIn, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmdOut, fromBrowser, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--user-data-dir="+filepath.Join(t.TempDir(), "profile"), "--window-size=900,700", "--remote-debugging-pipe", "about:blank")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	cmd.ExtraFiles = []*os.File{toBrowser, fromBrowser} // fds 3 and 4
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("%s: %v", bin, err)
	}
	toBrowser.Close() // the browser's ends: closed here, so a browser that dies ends our reads
	fromBrowser.Close()
	t.Cleanup(func() { // Browser.close lets the browser end its own child processes; the kill is the fallback
		_, _ = cmdIn.Write([]byte(`{"id": 0, "method": "Browser.close"}` + "\x00"))
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cancel()
			<-done
		}
		cancel()
		cmdIn.Close()
		cmdOut.Close()
	})
	d := &devtools{t: t, w: cmdIn, r: bufio.NewReader(cmdOut)}
	var target struct{ TargetID string }
	d.call("Target.createTarget", map[string]any{"url": pageURL}, &target)
	var attached struct{ SessionID string }
	d.call("Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	d.session = attached.SessionID
	return d
}

// call sends one command and decodes its result into out (when not nil); events are skipped.
func (d *devtools) call(method string, params any, out any) {
	d.t.Helper()
	d.id++
	msg := map[string]any{"id": d.id, "method": method, "params": params}
	if d.session != "" {
		msg["sessionId"] = d.session
	}
	b, err := json.Marshal(msg)
	if err != nil {
		d.t.Fatal(err)
	}
	if _, err := d.w.Write(append(b, 0)); err != nil {
		d.t.Fatalf("%s: %v", method, err)
	}
	for {
		line, err := d.r.ReadBytes(0)
		if err != nil {
			d.t.Fatalf("%s: the browser's answer: %v", method, err)
		}
		var resp struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(line[:len(line)-1], &resp); err != nil {
			d.t.Fatalf("%s: the browser's answer is not JSON: %v", method, err)
		}
		if resp.ID != d.id {
			continue
		}
		if resp.Error != nil {
			d.t.Fatalf("%s: %s", method, resp.Error.Message)
		}
		if out != nil {
			if err := json.Unmarshal(resp.Result, out); err != nil {
				d.t.Fatalf("%s: %v", method, err)
			}
		}
		return
	}
}

// eval evaluates a JavaScript expression in the page (promises awaited) and decodes its value into out.
func (d *devtools) eval(expr string, out any) {
	d.t.Helper()
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	d.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &res)
	if res.ExceptionDetails != nil {
		d.t.Fatalf("%s: %s", expr, res.ExceptionDetails.Text)
	}
	if out != nil {
		if err := json.Unmarshal(res.Result.Value, out); err != nil {
			d.t.Fatalf("%s: value %s: %v", expr, res.Result.Value, err)
		}
	}
}

// waitFor polls a boolean expression until it holds.
func (d *devtools) waitFor(expr string, timeout time.Duration) {
	d.t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var ok bool
		if d.eval(expr, &ok); ok {
			return
		}
	}
	d.t.Fatalf("%s did not hold within %v", expr, timeout)
}

// setFiles chooses files in the page's <input type=file> matched by selector.
func (d *devtools) setFiles(selector string, files ...string) {
	d.t.Helper()
	var doc struct {
		Root struct {
			NodeID int `json:"nodeId"`
		} `json:"root"`
	}
	d.call("DOM.getDocument", map[string]any{"depth": 0}, &doc)
	var node struct {
		NodeID int `json:"nodeId"`
	}
	d.call("DOM.querySelector", map[string]any{"nodeId": doc.Root.NodeID, "selector": selector}, &node)
	if node.NodeID == 0 {
		d.t.Fatalf("no %s in the page", selector)
	}
	d.call("DOM.setFileInputFiles", map[string]any{"nodeId": node.NodeID, "files": files}, nil)
}

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
