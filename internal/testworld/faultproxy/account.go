package faultproxy

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"strings"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
)

// How the proxy knows the account of a call, the way moto does
// (moto/core/responses.py get_current_account, moto/iam/models.py
// get_account_id_from):
//
//  1. an "X-Moto-Account-Id" header names it;
//  2. otherwise the access key that signed the call belongs to the account
//     whose IAM backend holds it. moto creates keys in two places: STS
//     AssumeRole (and AssumeRoleWithWebIdentity, AssumeRoleWithSAML) puts a
//     temporary key into the account of the role's ARN, which the answer's
//     AssumedRoleUser Arn names (arn:aws:sts::ACCOUNT:assumed-role/...);
//     IAM CreateAccessKey puts one into the calling account. The proxy reads
//     those answers as they pass through it and remembers key → account;
//  3. any other key ("test", the fixed key of GetSessionToken) is
//     moto.DefaultAccountID's.
//
// One difference, on purpose: moto attributes presigned URLs (the key in
// X-Amz-Credential) to the default account; the proxy attributes them to the
// signer's account, as AWS does, so a rule aimed at an account also hits the
// presigned S3 GETs it hands out.
//
// Keys are learned only from answers that pass through the proxy, so
// credentials must be made through it (testworld.World.Config does), and
// forgotten with ForgetAccessKeys when the server is reset.

// maxLearnBody bounds how much of an STS or IAM answer is read to learn a key.
const maxLearnBody = 1 << 20

// accountOf is the account r acts as; the caller holds p.mu.
func (p *Proxy) accountOf(r *http.Request) string {
	if a := r.Header.Get("X-Moto-Account-Id"); a != "" {
		return a
	}
	if a, ok := p.accounts[accessKeyOf(r)]; ok {
		return a
	}
	return moto.DefaultAccountID
}

// learnsKeys reports whether an answer to action creates an access key whose
// account the proxy must remember.
func learnsKeys(action string) bool {
	switch action {
	case "sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", "sts:AssumeRoleWithSAML", "iam:CreateAccessKey":
		return true
	}
	return false
}

// learnKey reads a successful answer to d's call and remembers the account
// of the access key it hands out; resp.Body is left readable from the start.
func (p *Proxy) learnKey(resp *http.Response, d *decision) error {
	if resp.StatusCode != http.StatusOK || !learnsKeys(d.action) {
		return nil
	}
	if enc := resp.Header.Get("Content-Encoding"); enc != "" && enc != "identity" {
		return nil // moto does not compress; nothing to learn from what we cannot read
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxLearnBody))
	if err != nil {
		return err
	}
	// The client gets the whole answer: what was read, then any rest.
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
	if len(body) == maxLearnBody {
		return nil // not an answer of moto's STS or IAM; nothing to learn
	}
	key, roleArn := keyInAnswer(body)
	if key == "" {
		return nil
	}
	account := d.account // iam:CreateAccessKey: the caller's own account
	if roleArn != "" {
		// arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION
		if parts := strings.Split(roleArn, ":"); len(parts) >= 6 && parts[4] != "" {
			account = parts[4]
		}
	}
	p.mu.Lock()
	p.accounts[key] = account
	p.mu.Unlock()
	return nil
}

// keyInAnswer finds the AccessKeyId in an STS or IAM query-XML answer and,
// in assume-role answers, the AssumedRoleUser's Arn.
func keyInAnswer(body []byte) (accessKeyID, assumedRoleArn string) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	var stack []string
	for {
		tok, err := dec.Token()
		if err != nil {
			return accessKeyID, assumedRoleArn
		}
		switch t := tok.(type) {
		case xml.StartElement:
			stack = append(stack, t.Name.Local)
		case xml.EndElement:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case xml.CharData:
			n := len(stack)
			switch {
			case n >= 1 && stack[n-1] == "AccessKeyId" && accessKeyID == "":
				accessKeyID = strings.TrimSpace(string(t))
			case n >= 2 && stack[n-1] == "Arn" && stack[n-2] == "AssumedRoleUser":
				assumedRoleArn = strings.TrimSpace(string(t))
			}
		}
	}
}
