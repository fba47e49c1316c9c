package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/patch"
)

func init() {
	register(command{
		name:    "apply",
		usage:   "[-allow-devices] [-cache FILE] [-source-cache FILE] [-raw] [-json] SOURCE ROOT",
		summary: "make directory ROOT (or, with -raw, device ROOT) exactly equal to SOURCE",
		run:     runApply,
	})
}

func runApply(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("apply", env.stderr)
	allowDevices := fs.Bool("allow-devices", false, "create device nodes the source holds (trust the source with devices)")
	cache := fs.String("cache", "", "stat cache `file` for ROOT (outside ROOT): makes the next scan of ROOT fast")
	sourceCache := fs.String("source-cache", "", "stat cache `file` for a SOURCE directory")
	raw := fs.Bool("raw", false, "SOURCE is a raw disk image and ROOT a block device or image file")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	parallel := fs.Int("parallel", 0, "concurrent hashes and fetches (0: default)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return errUsage
	}
	srcPath, root := fs.Arg(0), fs.Arg(1)
	start := time.Now()
	src, err := loadSource(ctx, srcPath, *raw, *sourceCache, env.log)
	if err != nil {
		return err
	}
	defer src.close()
	env.log.Info("source read", "source", srcPath, "kind", src.kind, "entries", len(src.manifest.Entries), "elapsed", time.Since(start))

	opts := patch.Options{
		AllowDevices:  *allowDevices,
		StatCachePath: *cache,
		Parallel:      *parallel,
		Logger:        env.log,
	}
	var res patch.Result
	if *raw {
		res, err = patch.ApplyRaw(ctx, root, src.manifest, src.objects, opts)
	} else {
		if fi, serr := os.Stat(root); serr != nil || !fi.IsDir() {
			return fmt.Errorf("root %s: not a directory (%v)", root, serr)
		}
		res, err = patch.Apply(ctx, root, src.manifest, src.objects, opts)
	}
	if errors.Is(err, patch.ErrDevicesNotAllowed) {
		return fmt.Errorf("%w: nothing was written; pass -allow-devices to create the device nodes of a source you trust", err)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	if *raw {
		fmt.Fprintf(env.stdout, "blocks written %d, bytes written %d, fetched %d objects (%d bytes), reused %d, in %s\n",
			res.BlocksWritten, res.BytesWritten, res.ObjectsFetched, res.BytesFetched, res.ObjectsReused, res.Duration.Round(time.Millisecond))
		return nil
	}
	fmt.Fprintf(env.stdout, "created %d, updated %d, deleted %d, unchanged %d; bytes written %d; fetched %d objects (%d bytes), reused %d; in %s\n",
		res.Created, res.Updated, res.Deleted, res.Unchanged, res.BytesWritten,
		res.ObjectsFetched, res.BytesFetched, res.ObjectsReused, res.Duration.Round(time.Millisecond))
	return nil
}
