package awsclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeSTS answers GetCallerIdentity for the caller's own credentials and
// refuses every AssumeRole, in STS's query-protocol error format. moto lets
// anyone assume any role, so this is how an unassumable role is tested.
func fakeSTS(t *testing.T) (url string, assumeCalls *atomic.Int32) {
	assumeCalls = &atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		w.Header().Set("Content-Type", "text/xml")
		switch r.Form.Get("Action") {
		case "AssumeRole":
			assumeCalls.Add(1)
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User arn:aws:iam::123456789012:user/ci is not authorized to perform: sts:AssumeRole on resource: %s</Message></Error><RequestId>r1</RequestId></ErrorResponse>`, r.Form.Get("RoleArn"))
		case "GetCallerIdentity":
			fmt.Fprint(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/ci</Arn><UserId>AIDA</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>r2</RequestId></ResponseMetadata></GetCallerIdentityResponse>`)
		default:
			http.Error(w, "unexpected action", http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, assumeCalls
}

func TestUnassumableTargetRole(t *testing.T) {
	sts, calls := fakeSTS(t)
	f := newTestFactory(t, Settings{Endpoints: map[Service]string{STS: sts}})
	role := "arn:aws:iam::222222222222:role/denied"
	// Several callers at once: one attempt for all, and all get the answer.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.For(context.Background(), Target{RoleARN: role, Region: "eu-west-1"})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if !errors.Is(err, ErrAssumeRole) {
			t.Fatalf("got %v, want ErrAssumeRole", err)
		}
		for _, want := range []string{"assume role " + role + " for region eu-west-1", "AccessDenied"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("AssumeRole called %d times; a refusal is not retried, and the answer is shared", n)
	}
	// The provider's own credentials are fine.
	if home, err := f.Home(context.Background()); err != nil || home.AccountID != "123456789012" {
		t.Fatalf("home: %v", err)
	}
}

func TestUnassumableProviderRole(t *testing.T) {
	sts, _ := fakeSTS(t)
	f := newTestFactory(t, Settings{Endpoints: map[Service]string{STS: sts},
		AssumeRole: &AssumeRole{RoleARN: "arn:aws:iam::333333333333:role/ci"}})
	// A target role built on a refused provider role names the provider's.
	_, err := f.For(context.Background(), Target{RoleARN: "arn:aws:iam::222222222222:role/publisher"})
	if !errors.Is(err, ErrAssumeRole) || !strings.Contains(err.Error(), "assume_role.role_arn arn:aws:iam::333333333333:role/ci") {
		t.Fatalf("got %v, want the provider's assume_role named", err)
	}
}
