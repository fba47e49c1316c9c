package baseimage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/autoami/terraform-provider-autoami/internal/securitylevel"
)

// Feed is an advisory feed: a JSON document that says, for images matched by
// ID or by name pattern, how urgent their update is. Its format:
//
//	{
//	  "advisories": [
//	    {
//	      "image_id": "ami-0abc...",            // or "image_name": "al2023-ami-2023.11.*"
//	      "security_level": "critical",          // critical|high|medium|low|unknown, or important|moderate|negligible
//	      "update_type": "security",             // security|feature|maintenance|unknown (default security)
//	      "changelog_url": "https://...",        // optional
//	      "cves": ["CVE-2026-1234"]              // optional
//	    }
//	  ]
//	}
//
// An entry names exactly one of image_id or image_name (an AWS-style pattern:
// `*` any run of characters, `?` one character). An image takes the first
// entry with its ID; failing that, the first entry whose pattern matches its
// name, in document order. Unknown fields are errors, so a typo cannot
// silently drop an advisory. Security levels are read by securitylevel.Parse
// (vendor words become the canonical level they mean; missing is unknown).
type Feed struct {
	Advisories []Advisory `json:"advisories"`
}

// Advisory is one entry of a Feed.
type Advisory struct {
	ImageID       string              `json:"image_id,omitempty"`
	ImageName     string              `json:"image_name,omitempty"`
	SecurityLevel securitylevel.Level `json:"security_level,omitempty"`
	UpdateType    string              `json:"update_type,omitempty"`
	ChangelogURL  string              `json:"changelog_url,omitempty"`
	CVEs          []string            `json:"cves,omitempty"`
}

// maxFeedBytes bounds a feed download; real feeds are kilobytes.
const maxFeedBytes = 16 << 20

func loadAdvisories(ctx context.Context, location string) (*Feed, error) {
	var data []byte
	var err error
	if strings.HasPrefix(location, "http://") || strings.HasPrefix(location, "https://") {
		data, err = fetchFeed(ctx, location)
	} else {
		data, err = os.ReadFile(location)
		if err != nil {
			err = fmt.Errorf("read advisory feed %s: %w", location, err)
		}
	}
	if err != nil {
		return nil, err
	}
	var feed Feed
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&feed); err != nil {
		return nil, fmt.Errorf("advisory feed %s is not a valid feed document (JSON with an \"advisories\" list): %w", location, err)
	}
	if err := feed.validate(); err != nil {
		return nil, fmt.Errorf("advisory feed %s: %w", location, err)
	}
	return &feed, nil
}

func fetchFeed(ctx context.Context, url string) ([]byte, error) {
	client := retryablehttp.NewClient()
	client.RetryMax = 2
	client.RetryWaitMin = 200 * time.Millisecond
	client.RetryWaitMax = 2 * time.Second
	client.HTTPClient.Timeout = 20 * time.Second
	client.Logger = nil
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("advisory feed URL %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch advisory feed %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch advisory feed %s: HTTP %s", url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxFeedBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch advisory feed %s: %w", url, err)
	}
	if len(data) > maxFeedBytes {
		return nil, fmt.Errorf("advisory feed %s is larger than %d bytes", url, maxFeedBytes)
	}
	return data, nil
}

func (f *Feed) validate() error {
	if f.Advisories == nil {
		return fmt.Errorf(`no "advisories" list`)
	}
	for i := range f.Advisories {
		a := &f.Advisories[i]
		where := fmt.Sprintf("advisories[%d]", i)
		switch {
		case a.ImageID != "" && a.ImageName != "":
			return fmt.Errorf("%s names both image_id %q and image_name %q; give one", where, a.ImageID, a.ImageName)
		case a.ImageID != "":
			where += fmt.Sprintf(" (image_id %q)", a.ImageID)
		case a.ImageName != "":
			where += fmt.Sprintf(" (image_name %q)", a.ImageName)
			if _, err := path.Match(a.ImageName, ""); err != nil {
				return fmt.Errorf("%s: bad pattern: %w", where, err)
			}
		default:
			return fmt.Errorf("%s names neither image_id nor image_name", where)
		}
		level, err := securitylevel.Parse(string(a.SecurityLevel))
		if err != nil {
			return fmt.Errorf("%s: security_level: %w", where, err)
		}
		a.SecurityLevel = level
		if a.UpdateType == "" {
			a.UpdateType = UpdateSecurity
		}
		if !slices.Contains(UpdateTypes, a.UpdateType) {
			return fmt.Errorf("%s: unknown update_type %q (want one of %s)", where, a.UpdateType, strings.Join(UpdateTypes, ", "))
		}
	}
	return nil
}

// Lookup returns the advisory for an image, or nil.
func (f *Feed) Lookup(img Image) *Advisory {
	if f == nil {
		return nil
	}
	for i := range f.Advisories {
		if f.Advisories[i].ImageID != "" && f.Advisories[i].ImageID == img.ID {
			return &f.Advisories[i]
		}
	}
	for i := range f.Advisories {
		if f.Advisories[i].ImageName != "" && matchName(f.Advisories[i].ImageName, img.Name) {
			return &f.Advisories[i]
		}
	}
	return nil
}

// matchName matches AWS name patterns, where `*` also crosses `/`
// (path.Match does not, so slashes are swapped out first).
func matchName(pattern, name string) bool {
	const sep = "\x00"
	ok, _ := path.Match(strings.ReplaceAll(pattern, "/", sep), strings.ReplaceAll(name, "/", sep))
	return ok
}
