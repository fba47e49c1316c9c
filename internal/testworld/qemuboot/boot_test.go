package qemuboot

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestLastLines(t *testing.T) {
	console := "\x1b[2J\x1b[01;01HSeaBIOS\r\nline 2\r\n\x00line 3\r\n"
	if got := LastLines(console, 2); got != "line 2\nline 3" {
		t.Errorf("LastLines = %q", got)
	}
	if got := LastLines(console, 10); !strings.HasPrefix(got, "SeaBIOS\n") {
		t.Errorf("escape sequences not removed: %q", got)
	}
	if got := LastLines("", 3); got != "(the console showed nothing)" {
		t.Errorf("LastLines of nothing = %q", got)
	}
}

// TestBootFailureShowsConsole boots a blank disk under OVMF: the firmware
// finds nothing to boot, and the error says so with the console's last lines.
func TestBootFailureShowsConsole(t *testing.T) {
	if err := Check(Options{}); err != nil {
		t.Fatal(err)
	}
	img := t.TempDir() + "/blank.img"
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	// OVMF under TCG prints BdsDxe within seconds on an idle machine; the
	// timeout leaves room for a loaded one (the firmware waits no longer).
	_, err := Boot(context.Background(), Options{Image: img, Accel: "tcg", Timeout: 45 * time.Second,
		Ready: regexp.MustCompile(`AUTOAMI-NEVER`), Firmware: UEFI})
	if err == nil {
		t.Fatal("a blank disk booted")
	}
	if !strings.Contains(err.Error(), "no \"AUTOAMI-NEVER\" on the console within 45s") ||
		!strings.Contains(err.Error(), "BdsDxe") {
		t.Errorf("error lacks the timeout or the console lines: %v", err)
	}
	if _, err := Boot(context.Background(), Options{Image: img, Accel: "vmx"}); err == nil {
		t.Error("an unknown accelerator was accepted")
	}
}
