package faultproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"
	"sync/atomic"
	"time"
)

// maxFormBody bounds how much of a url-encoded body is read to find Action.
const maxFormBody = 32 << 20

// errDropResponse tells the error handler to close the connection unanswered.
var errDropResponse = errors.New("faultproxy: response dropped")

// ruleState is a Rule with its counters.
type ruleState struct {
	Rule
	matched                          int
	throttle, fail, dropReq, dropRes float64 // accumulated fractions
}

// hit reports whether the n-th matching call (0-based) is hit by s; acc
// carries the fraction's remainder so hits are spread evenly. The fraction
// counts every call after the first First, whether Nth hits it or not, so
// adding an Nth does not shift the fraction's pattern.
func hit(s Share, n int, acc *float64) bool {
	if n < s.First {
		return true
	}
	byFraction := false
	if s.Fraction > 0 {
		*acc += s.Fraction
		if *acc >= 1-1e-9 {
			*acc--
			byFraction = true
		}
	}
	return byFraction || (s.Nth > 0 && n+1 == s.Nth)
}

// call is what rules match a request by.
type call struct {
	action, region, account string
}

// decision is what the proxy does with one call.
type decision struct {
	call
	latency                             time.Duration
	throttle, dropRequest, dropResponse bool
	// fail is the chosen error to answer with, if a rule's Error hit.
	fail *ErrorReply
}

type decisionKey struct{}

func start(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("fault proxy target %q is not an absolute URL", target)
	}
	p := &Proxy{target: u, stats: map[string]*Stat{}, accounts: map[string]string{}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			// Keep the client's Host: moto builds URLs (presigned, locations) from it.
			pr.Out.Host = pr.In.Host
		},
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fault proxy listen on 127.0.0.1: %w", err)
	}
	p.server = &http.Server{Handler: p.handler(rp), ReadHeaderTimeout: time.Minute}
	p.URL = "http://" + l.Addr().String()
	go func() { _ = p.server.Serve(l) }()
	return p, nil
}

func (p *Proxy) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isControl(r) {
			p.serveControl(w, r)
			return
		}
		var form url.Values
		if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			body, err := io.ReadAll(io.LimitReader(r.Body, maxFormBody))
			r.Body.Close()
			if err != nil {
				http.Error(w, "faultproxy: read request body: "+err.Error(), http.StatusBadGateway)
				return
			}
			form, _ = url.ParseQuery(string(body))
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		d := p.decide(r, actionOf(r, form))
		if d.latency > 0 {
			select {
			case <-time.After(d.latency):
			case <-r.Context().Done():
				return
			}
		}
		switch {
		case d.dropRequest:
			hangUp(w)
			return
		case d.throttle:
			writeError(w, r, serviceOf(r), throttleError(r, serviceOf(r)))
			return
		case d.fail != nil:
			writeError(w, r, serviceOf(r), chosenError(*d.fail, d.action))
			return
		}
		counted := &countingReader{r: r.Body}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = counted
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), decisionKey{}, d)))
		p.add(d.action, func(s *Stat) { s.RequestBytes += counted.n.Load() })
	})
}

// decide chooses the faults for r, a call of action, and counts it.
func (p *Proxy) decide(r *http.Request, action string) *decision {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := &decision{call: call{action: action, region: regionOf(r), account: p.accountOf(r)}}
	s := p.stat(action)
	s.Calls++
	for _, rs := range p.rules {
		if !rs.matches(d.call) {
			continue
		}
		n := rs.matched
		rs.matched++
		d.latency = rs.Latency
		// Every share sees every matching call, so each one's pattern
		// stays what its own numbers say, whichever fault wins.
		dropReq := hit(rs.DropRequest, n, &rs.dropReq)
		throttle := hit(rs.Throttle, n, &rs.throttle)
		fail := hit(rs.Error.Share, n, &rs.fail)
		dropRes := hit(rs.DropResponse, n, &rs.dropRes)
		switch {
		case dropReq:
			d.dropRequest = true
			s.DroppedRequests++
		case throttle:
			d.throttle = true
			s.Throttled++
		case fail:
			e := rs.Error
			d.fail = &e
			s.Errors++
		case dropRes:
			d.dropResponse = true
			s.DroppedResponses++
		}
		break
	}
	return d
}

// matches reports whether c is one of the calls rs is aimed at.
func (rs *ruleState) matches(c call) bool {
	return matches(rs.Actions, c.action) && matches(rs.Regions, c.region) && matches(rs.Accounts, c.account)
}

// matches reports whether value matches one of patterns; no patterns
// match everything.
func matches(patterns []string, value string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, pat := range patterns {
		if ok, _ := path.Match(pat, value); ok {
			return true
		}
	}
	return false
}

func (p *Proxy) modifyResponse(resp *http.Response) error {
	d, _ := resp.Request.Context().Value(decisionKey{}).(*decision)
	if d == nil {
		return nil
	}
	// Learn the keys of an answer even if it is then dropped: the server
	// created them either way.
	if err := p.learnKey(resp, d); err != nil {
		return fmt.Errorf("read the answer to %s: %w", d.action, err)
	}
	if d.dropResponse {
		_, _ = io.Copy(io.Discard, resp.Body) // the server has acted; finish reading
		return errDropResponse
	}
	resp.Body = &countingBody{ReadCloser: resp.Body, done: func(n int64) {
		p.add(d.action, func(s *Stat) { s.ResponseBytes += n })
	}}
	return nil
}

func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errDropResponse) {
		hangUp(w)
		return
	}
	http.Error(w, "faultproxy: "+err.Error(), http.StatusBadGateway)
}

// hangUp closes the client's connection without an answer.
func hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // HTTP/2 or a recorder: abort the stream
	}
	conn.Close()
}

func (p *Proxy) stat(action string) *Stat {
	s := p.stats[action]
	if s == nil {
		s = &Stat{}
		p.stats[action] = s
	}
	return s
}

func (p *Proxy) add(action string, f func(*Stat)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p.stat(action))
}

func (p *Proxy) setRules(rules []Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = p.rules[:0]
	for _, r := range rules {
		p.rules = append(p.rules, &ruleState{Rule: r.clone()})
	}
}

func (p *Proxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
	p.stats = map[string]*Stat{}
}

func (p *Proxy) forgetAccessKeys() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.accounts = map[string]string{}
}

func (p *Proxy) currentRules() []Rule {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Rule, len(p.rules))
	for i, rs := range p.rules {
		out[i] = rs.Rule.clone()
	}
	return out
}

// resetStats zeroes the counters per action, leaving rules and keys.
func (p *Proxy) resetStats() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats = map[string]*Stat{}
}

func (p *Proxy) snapshot() map[string]Stat {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]Stat, len(p.stats))
	for k, v := range p.stats {
		out[k] = *v
	}
	return out
}

// countingReader counts a request body; the transport may still be reading
// it on another goroutine, hence the atomic.
type countingReader struct {
	r io.ReadCloser
	n atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

type countingBody struct {
	io.ReadCloser
	n    int64
	done func(int64)
}

func (c *countingBody) Read(b []byte) (int, error) {
	n, err := c.ReadCloser.Read(b)
	c.n += int64(n)
	return n, err
}

func (c *countingBody) Close() error {
	err := c.ReadCloser.Close()
	if c.done != nil {
		c.done(c.n)
		c.done = nil
	}
	return err
}
