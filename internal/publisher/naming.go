package publisher

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Placeholders of a name template.
const (
	placeholderStream   = "{stream}"
	placeholderRevision = "{revision}"
	placeholderDate     = "{date}"
	// revisionDigits is how much of the revision a name shows.
	revisionDigits = 12
	// dateLayout renders {date}: UTC, minutes, only characters AMI names allow.
	dateLayout = "20060102-1504"
)

// AMI names: 3–128 characters of letters, digits and ( ) [ ] space . / - ' @ _
// (EC2 RegisterImage).
var (
	amiNameChars      = regexp.MustCompile(`^[A-Za-z0-9()\[\] ./\-'@_]*$`)
	placeholderRE     = regexp.MustCompile(`\{[^{}]*\}`)
	minNameLen        = 3
	maxNameLen        = 128
	knownPlaceholders = map[string]bool{placeholderStream: true, placeholderRevision: true, placeholderDate: true}
)

func renderName(template, stream, revision string, date time.Time) string {
	short := revision
	if len(short) > revisionDigits {
		short = short[:revisionDigits]
	}
	return strings.NewReplacer(
		placeholderStream, stream,
		placeholderRevision, short,
		placeholderDate, date.UTC().Format(dateLayout),
	).Replace(template)
}

// validateNameTemplate checks the template's placeholders, its literal
// characters and the length of the names it gives for stream.
func validateNameTemplate(template, stream string) error {
	for _, p := range placeholderRE.FindAllString(template, -1) {
		if !knownPlaceholders[p] {
			return fmt.Errorf("name: unknown placeholder %s in %q (known: {stream}, {revision}, {date})", p, template)
		}
	}
	if !strings.Contains(template, placeholderRevision) {
		// Every revision gets a new AMI, and AMI names are unique per
		// account and region.
		return fmt.Errorf("name: %q lacks {revision}: every revision is a new AMI, and names are unique in a target", template)
	}
	literal := placeholderRE.ReplaceAllString(template, "")
	if strings.ContainsAny(literal, "{}") {
		return fmt.Errorf("name: unbalanced brace in %q", template)
	}
	if !amiNameChars.MatchString(literal) {
		return fmt.Errorf("name: %q has characters an AMI name may not hold (allowed: letters, digits, ( ) [ ] space . / - ' @ _)", template)
	}
	if !amiNameChars.MatchString(stream) {
		return fmt.Errorf("name: stream %q has characters an AMI name may not hold", stream)
	}
	name := renderName(template, stream, strings.Repeat("0", revisionDigits), time.Time{})
	if len(name) < minNameLen || len(name) > maxNameLen {
		return fmt.Errorf("name: %q gives names of %d characters for stream %q, but AMI names have %d to %d", template, len(name), stream, minNameLen, maxNameLen)
	}
	return nil
}

// Values of TagRole.
const (
	roleStreamVolume = "stream-volume"
	roleRootSnapshot = "root-snapshot"
	roleImage        = "image"
)
