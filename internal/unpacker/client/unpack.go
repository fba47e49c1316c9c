package client

import (
	"context"
	"fmt"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

func (c *client) unpack(ctx context.Context, req wire.UnpackRequest, sign URLSigner, opts UnpackOptions) (wire.UnpackStatus, error) {
	if opts.Attempts <= 0 {
		opts.Attempts = 3
	}
	if opts.PollWait <= 0 {
		opts.PollWait = 20 * time.Second
	}
	report := func(st wire.UnpackStatus) {
		if opts.Progress != nil {
			opts.Progress(st)
		}
	}
	// Every answer is decoded into a fresh value: JSON leaves fields that an
	// answer omits (an empty WantedObjects) as they were.
	call := func(path string, in any) (wire.UnpackStatus, error) {
		var out wire.UnpackStatus
		err := c.call(ctx, path, in, &out)
		return out, err
	}
	st, err := call(wire.PathUnpack, req)
	if err != nil {
		return st, err
	}
	attempt := 1
	for {
		report(st)
		switch {
		case st.Done:
			return st, nil
		case st.Error != "":
			if attempt >= opts.Attempts {
				return st, fmt.Errorf("unpack stream %q to revision %s: failed %d times, last: %s", req.Stream, req.Revision, attempt, st.Error)
			}
			attempt++
			// Starting again resumes: the daemon keeps what it fetched.
			if st, err = call(wire.PathUnpack, req); err != nil {
				return st, err
			}
		case len(st.WantedObjects) > 0:
			urls, err := sign(ctx, st.WantedObjects)
			if err != nil {
				return st, fmt.Errorf("unpack stream %q to revision %s: sign URLs for %d objects: %w", req.Stream, req.Revision, len(st.WantedObjects), err)
			}
			if st, err = call(wire.PathObjectURLs, wire.ObjectURLsRequest{Stream: req.Stream, Revision: req.Revision, URLs: urls}); err != nil {
				return st, err
			}
		default:
			next, err := c.unpackStatus(ctx, wire.UnpackStatusRequest{Stream: req.Stream, Revision: req.Revision, WaitSeconds: opts.PollWait.Seconds()})
			if err != nil {
				return st, err
			}
			st = next
		}
	}
}
