package provider

import (
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// unknownPaths lists the attributes of a configuration whose values are not
// known yet (outermost only: an unknown block is reported, not its fields).
func unknownPaths(v tftypes.Value) []path.Path {
	var out []path.Path
	_ = tftypes.Walk(v, func(ap *tftypes.AttributePath, v tftypes.Value) (bool, error) {
		if v.IsKnown() {
			return true, nil
		}
		if p, ok := frameworkPath(ap); ok {
			out = append(out, p)
		}
		return false, nil
	})
	return out
}

// frameworkPath converts a tftypes attribute path into a framework path.
func frameworkPath(ap *tftypes.AttributePath) (path.Path, bool) {
	steps := ap.Steps()
	if len(steps) == 0 {
		return path.Empty(), false
	}
	name, ok := steps[0].(tftypes.AttributeName)
	if !ok {
		return path.Empty(), false
	}
	p := path.Root(string(name))
	for _, step := range steps[1:] {
		switch s := step.(type) {
		case tftypes.AttributeName:
			p = p.AtName(string(s))
		case tftypes.ElementKeyString:
			p = p.AtMapKey(string(s))
		case tftypes.ElementKeyInt:
			p = p.AtListIndex(int(s))
		default:
			return p, true
		}
	}
	return p, true
}
