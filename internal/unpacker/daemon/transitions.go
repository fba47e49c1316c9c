package daemon

import (
	"fmt"
	"slices"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// transitions is the one table of the changes of a stream's state: for each
// state, the states it may change to. stream.setStateWithLock refuses every
// other change with an error, so a code path that would, say, report a
// stream clean without syncing it (from updating straight to clean) fails
// loudly instead. Staying in a state is not a change and always allowed.
var transitions = map[wire.StreamState][]wire.StreamState{
	// restore (daemon start, associate, attach of a stream's missing
	// volume) runs on unmounted and no-device streams: no device; laying
	// out an empty volume; a failed look or mount (unmounted); or the state
	// the record and the volume say (crash recovery: dirty, clean, frozen
	// or unmounted for a snapshot when the daemon stopped so).
	wire.StateUnmounted: {wire.StateNoDevice, wire.StatePreparingVolume, wire.StateMounted, wire.StateClean,
		wire.StateDirty, wire.StateFrozen, wire.StateUnmountedForSnapshot,
		wire.StateFetchingManifest}, // unpack of a volume whose layout is known (it mounts it)
	wire.StateNoDevice: {wire.StatePreparingVolume, wire.StateUnmounted, wire.StateMounted, wire.StateClean,
		wire.StateDirty, wire.StateFrozen, wire.StateUnmountedForSnapshot},
	// restore after laying out an empty volume: mounted, or unmounted when
	// mounting failed.
	wire.StatePreparingVolume: {wire.StateMounted, wire.StateUnmounted},

	// unpack starts from a mounted, clean or dirty stream. Associated
	// again after its volume grew, such a stream is unmounted to grow its
	// root, and restored (growMounted).
	wire.StateMounted: {wire.StateFetchingManifest, wire.StateUnmounted},
	wire.StateDirty:   {wire.StateFetchingManifest, wire.StateUnmounted},
	// A clean stream is also prepared for a snapshot (prepare-for-snapshot).
	wire.StateClean: {wire.StateFetchingManifest, wire.StateFrozen, wire.StateUnmountedForSnapshot, wire.StateUnmounted},
	// release thaws or mounts it again.
	wire.StateFrozen:               {wire.StateClean},
	wire.StateUnmountedForSnapshot: {wire.StateClean},

	// The phases of an unpack, in order. Every phase may fail to dirty. An
	// unpack that fails while it reads the manifest, before it marked the
	// volume dirty, goes back to where it started.
	wire.StateFetchingManifest: {wire.StateScanning, wire.StateDirty,
		wire.StateMounted, wire.StateClean, wire.StateUnmounted},
	// A trusted plan (the stored manifest of the clean revision) whose
	// checks failed scans after all while fetching, and goes on to update
	// straight away when that scan finds nothing more to fetch.
	wire.StateScanning: {wire.StateFetching, wire.StateUpdating, wire.StateDirty},
	wire.StateFetching: {wire.StateUpdating, wire.StateScanning, wire.StateDirty},
	wire.StateUpdating: {wire.StateSyncing, wire.StateDirty},
	// The engine syncs the tree, boot loaders are written (volumes of
	// origin empty), then everything is synced again. Clean only from here.
	wire.StateSyncing:        {wire.StateMakingBootable, wire.StateClean, wire.StateDirty},
	wire.StateMakingBootable: {wire.StateSyncing, wire.StateDirty},
}

// checkTransition says whether stream may change from one state to another.
func checkTransition(stream string, from, to wire.StreamState) error {
	if from == to || slices.Contains(transitions[from], to) {
		return nil
	}
	return fmt.Errorf("stream %q: refused state transition from %s to %s (not in the daemon's table of transitions)", stream, from, to)
}
