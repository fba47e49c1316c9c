package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/autoami/terraform-provider-autoami/internal/testworld"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/qemuboot"
)

func init() {
	subcommands["boot"] = subcommand{
		summary: "boot an AMI of a running local AWS under qemu from its root snapshot",
		run:     runBoot,
	}
}

// runBoot is `localaws boot -endpoint URL [-region R] [-account A]
// [-firmware bios|uefi] [-timeout D] IMAGE_ID`: it exits 0 only when the
// image came up (login prompt or the boot fixture's marker) with every
// firmware its boot mode allows, and prints the last console lines if not.
func runBoot(args []string) error {
	fs := flag.NewFlagSet("boot", flag.ContinueOnError)
	endpoint := fs.String("endpoint", "", "the running local AWS (its endpoint URL; required)")
	region := fs.String("region", "us-east-1", "region of the image")
	account := fs.String("account", moto.DefaultAccountID, "account that sees the image (owner or shared with)")
	firmware := fs.String("firmware", "", "boot only with this firmware (bios or uefi); default: what the image's boot mode says")
	timeout := fs.Duration("timeout", 3*time.Minute, "bound on each boot")
	consoleLog := fs.String("console-log", "", "file for the serial console (default: discarded)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *endpoint == "" || fs.NArg() != 1 {
		return errors.New("usage: localaws boot -endpoint URL [-region R] [-account A] [-firmware bios|uefi] IMAGE_ID")
	}
	if *firmware != "" && *firmware != string(qemuboot.BIOS) && *firmware != string(qemuboot.UEFI) {
		return fmt.Errorf("-firmware %q: want bios or uefi", *firmware)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	dataDir, err := moto.DataDirOf(ctx, *endpoint)
	if err != nil {
		return err
	}
	cfg, err := moto.AccountConfig(ctx, *endpoint, *region, *account)
	if err != nil {
		return err
	}
	booted, err := testworld.BootImage(ctx, ec2.NewFromConfig(cfg), dataDir, fs.Arg(0), testworld.BootOptions{
		Firmware: qemuboot.Firmware(*firmware),
		Boot:     qemuboot.Options{Timeout: *timeout, ConsoleLog: *consoleLog},
	})
	if err != nil {
		return err
	}
	fws := make([]string, 0, len(booted.Boots))
	for fw := range booted.Boots {
		fws = append(fws, string(fw))
	}
	sort.Strings(fws)
	for _, fw := range fws {
		r := booted.Boots[qemuboot.Firmware(fw)]
		fmt.Printf("%s booted with %s (%s): %q after %s\n", booted.ImageID, fw, r.Accel, r.Match, r.Elapsed.Round(100*time.Millisecond))
	}
	return nil
}
