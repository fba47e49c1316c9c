package faultproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"
)

// rulesDoc is the JSON document of rules, the same for a -faults file and
// the control endpoint:
//
//	{"rules": [{"actions": ["ec2:RunInstances"], "regions": ["eu-west-1"],
//	  "accounts": ["222222222222"], "latency": "200ms",
//	  "error": {"code": "InsufficientInstanceCapacity", "nth": 2}}]}
type rulesDoc struct {
	Rules []ruleDoc `json:"rules"`
}

// ruleDoc is Rule in JSON: field names in snake_case, Latency as a Go
// duration string ("250ms"), faults that hit nothing left out.
type ruleDoc struct {
	Actions      []string    `json:"actions,omitempty"`
	Regions      []string    `json:"regions,omitempty"`
	Accounts     []string    `json:"accounts,omitempty"`
	Latency      string      `json:"latency,omitempty"`
	Throttle     *Share      `json:"throttle,omitempty"`
	Error        *ErrorReply `json:"error,omitempty"`
	DropRequest  *Share      `json:"drop_request,omitempty"`
	DropResponse *Share      `json:"drop_response,omitempty"`
}

func parseRules(doc []byte) ([]Rule, error) {
	var top any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("rules document is not JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("rules document: more than one JSON value")
	}
	obj, ok := top.(map[string]any)
	if !ok {
		return nil, errors.New(`rules document: want an object {"rules": [...]}`)
	}
	if _, ok := obj["rules"]; !ok {
		return nil, errors.New(`rules document: "rules" is missing (use {"rules": []} for none)`)
	}
	if err := checkShape(top, reflect.TypeFor[rulesDoc](), ""); err != nil {
		return nil, err
	}
	var d rulesDoc
	if err := json.Unmarshal(doc, &d); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("%s: want %s, got JSON %s", te.Field, te.Type, te.Value)
		}
		return nil, fmt.Errorf("rules document: %w", err)
	}
	rules := make([]Rule, len(d.Rules))
	var errs []error
	for i, rd := range d.Rules {
		r, err := rd.rule()
		if err != nil {
			errs = append(errs, fmt.Errorf("rules[%d].%w", i, err))
		}
		rules[i] = r
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := validateRules(rules); err != nil {
		return nil, err
	}
	return rules, nil
}

func (rd ruleDoc) rule() (Rule, error) {
	r := Rule{Actions: rd.Actions, Regions: rd.Regions, Accounts: rd.Accounts}
	if rd.Latency != "" {
		d, err := time.ParseDuration(rd.Latency)
		if err != nil {
			return Rule{}, fmt.Errorf("latency: %q is not a duration like \"250ms\" or \"2s\"", rd.Latency)
		}
		r.Latency = d
	}
	for _, s := range []struct {
		from *Share
		to   *Share
	}{{rd.Throttle, &r.Throttle}, {rd.DropRequest, &r.DropRequest}, {rd.DropResponse, &r.DropResponse}} {
		if s.from != nil {
			*s.to = *s.from
		}
	}
	if rd.Error != nil {
		r.Error = *rd.Error
	}
	return r, nil
}

func loadRules(path string) ([]Rule, error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read fault rules: %w", err)
	}
	rules, err := parseRules(doc)
	if err != nil {
		return nil, fmt.Errorf("fault rules %s: %w", path, err)
	}
	return rules, nil
}

func marshalRules(rules []Rule) ([]byte, error) {
	d := rulesDoc{Rules: make([]ruleDoc, len(rules))}
	for i, r := range rules {
		rd := ruleDoc{Actions: r.Actions, Regions: r.Regions, Accounts: r.Accounts}
		if r.Latency != 0 {
			rd.Latency = r.Latency.String()
		}
		share := func(s Share) *Share {
			if s == (Share{}) {
				return nil
			}
			return &s
		}
		rd.Throttle, rd.DropRequest, rd.DropResponse = share(r.Throttle), share(r.DropRequest), share(r.DropResponse)
		if r.Error != (ErrorReply{}) {
			e := r.Error
			rd.Error = &e
		}
		d.Rules[i] = rd
	}
	return json.MarshalIndent(d, "", "  ")
}

// checkShape reports the first place where v (a JSON value decoded with
// UseNumber) does not fit the type t: a key t has no field for, or a value
// of the wrong JSON type. at is where v is in the document
// ("rules[0].error"). encoding/json would ignore unknown keys, or with
// DisallowUnknownFields name them without saying where.
func checkShape(v any, t reflect.Type, at string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil {
		return nil // null leaves the field at its zero value
	}
	wrong := func(want string) error {
		return fmt.Errorf("%s: want %s, got %s", at, want, jsonKind(v))
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return wrong("an object")
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			ft, ok := fields[k]
			if !ok {
				known := make([]string, 0, len(fields))
				for name := range fields {
					known = append(known, name)
				}
				slices.Sort(known)
				return fmt.Errorf("%s: unknown field %q (known: %s)", join(at, k), k, strings.Join(known, ", "))
			}
			if err := checkShape(obj[k], ft, join(at, k)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			return wrong("an array")
		}
		for i, e := range arr {
			if err := checkShape(e, t.Elem(), fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			return wrong("a string")
		}
	case reflect.Int:
		n, ok := v.(json.Number)
		if !ok {
			return wrong("a whole number")
		}
		if _, err := n.Int64(); err != nil {
			return fmt.Errorf("%s: want a whole number, got %s", at, n)
		}
	case reflect.Float64:
		if _, ok := v.(json.Number); !ok {
			return wrong("a number")
		}
	}
	return nil
}

// jsonKind names the JSON type of a decoded value.
func jsonKind(v any) string {
	switch v := v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return fmt.Sprintf("the string %q", v)
	case json.Number:
		return "the number " + v.String()
	case bool:
		return fmt.Sprint(v)
	}
	return fmt.Sprintf("%v", v)
}

func join(at, key string) string {
	if at == "" {
		return key
	}
	return at + "." + key
}

// jsonFields maps the JSON names of t's fields, embedded structs' fields
// included as encoding/json flattens them, to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
