package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
)

func init() {
	subcommands["inventory"] = subcommand{
		summary: "list the instances, volumes, snapshots, images and SSM parameters made in a running local AWS",
		run:     runInventory,
	}
}

// runInventory is `localaws inventory -endpoint URL [-json]`: what tests, the
// demo or the provider made in the running local AWS, per account and region,
// with tags (built-in and seeded images are not listed). A table by default;
// -json prints the harness's inventory document.
func runInventory(args []string) error {
	fs := flag.NewFlagSet("inventory", flag.ContinueOnError)
	endpoint := fs.String("endpoint", "", "the running local AWS (its endpoint URL; required)")
	asJSON := fs.Bool("json", false, "print the inventory as JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *endpoint == "" || fs.NArg() != 0 {
		return errors.New("usage: localaws inventory -endpoint URL [-json]")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	inv, err := moto.InventoryAt(ctx, *endpoint)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(inv)
	}
	return writeInventoryTable(os.Stdout, inv)
}

// writeInventoryTable prints one line per resource: account, region, kind,
// ID, state, what it is made of or attached to, and its tags.
func writeInventoryTable(out io.Writer, inv moto.Inventory) error {
	if len(inv.Targets) == 0 {
		_, err := fmt.Fprintln(out, "nothing: no instances, volumes, snapshots, images or SSM parameters were made")
		return err
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ACCOUNT\tREGION\tKIND\tID\tSTATE\tDETAILS\tTAGS")
	for _, t := range inv.Targets {
		row := func(kind moto.ResourceKind, id, state, details string, tags map[string]string) {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Account, t.Region, kind, id, orDash(state), orDash(details), tagList(tags))
		}
		for _, r := range t.Instances {
			row(moto.KindInstance, r.ID, r.State, "", r.Tags)
		}
		for _, r := range t.Volumes {
			details := []string{fmt.Sprintf("%d GiB", r.SizeGiB)}
			for _, a := range r.Attachments {
				details = append(details, fmt.Sprintf("%s %s on %s", a.State, a.Device, a.InstanceID))
			}
			row(moto.KindVolume, r.ID, r.State, strings.Join(details, ", "), r.Tags)
		}
		for _, r := range t.Snapshots {
			row(moto.KindSnapshot, r.ID, r.State, "of "+orDash(r.VolumeID), r.Tags)
		}
		for _, r := range t.Images {
			row(moto.KindImage, r.ID, r.State, fmt.Sprintf("%s on %s", r.Name, orDash(strings.Join(r.SnapshotIDs, " "))), r.Tags)
		}
		for _, r := range t.Parameters {
			row(moto.KindParameter, r.Name, "", r.Type+", "+r.DataType, r.Tags)
		}
	}
	return w.Flush()
}

func tagList(tags map[string]string) string {
	if len(tags) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		parts = append(parts, k+"="+tags[k])
	}
	return strings.Join(parts, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
