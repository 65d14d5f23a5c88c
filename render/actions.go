package render

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/nothingnesses/agent-images/record"
)

// Output is one step output of a GitHub Actions step.
type Output struct{ Name, Value string }

// ReleaseOutputs are the step outputs of a release the Action exposes:
// digests, each released agent's index as JSON ({"pi":"sha256:..."}), for
// later steps that pin images by digest, and release-json, the absolute
// path of release.json when it was written.
func ReleaseOutputs(agents []*record.Agent, releaseJSON string) ([]Output, error) {
	digests := map[string]string{}
	for _, a := range Released(agents) {
		digests[a.Agent] = a.Index.String()
	}
	outs := []Output{{"digests", JSON(digests)}}
	if releaseJSON != "" {
		abs, err := filepath.Abs(releaseJSON)
		if err != nil {
			return nil, err
		}
		outs = append(outs, Output{"release-json", abs})
	}
	return outs, nil
}

// JSON is v as compact JSON, the form fromJSON reads back from an output.
func JSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps and slices of strings reach here
	}
	return string(b)
}

// WriteOutputs appends outputs to the step's $GITHUB_OUTPUT, in the
// delimited form so a value may hold newlines. Outside Actions ($GITHUB_OUTPUT
// unset) it writes name=value lines to elsewhere instead, when that is not
// nil.
func WriteOutputs(elsewhere io.Writer, outs ...Output) error {
	actions := os.Getenv("GITHUB_OUTPUT") != ""
	var b strings.Builder
	for _, o := range outs {
		if actions {
			delim := "ghadelim_" + rand.Text()
			fmt.Fprintf(&b, "%s<<%s\n%s\n%s\n", o.Name, delim, o.Value, delim)
		} else {
			fmt.Fprintf(&b, "%s=%s\n", o.Name, o.Value)
		}
	}
	return appendEnvFile("GITHUB_OUTPUT", "the step outputs", elsewhere, b.String())
}

// WriteStepSummary appends Markdown to the step's $GITHUB_STEP_SUMMARY;
// outside Actions it writes it to elsewhere instead, when that is not nil.
func WriteStepSummary(elsewhere io.Writer, markdown string) error {
	return appendEnvFile("GITHUB_STEP_SUMMARY", "the step summary", elsewhere, markdown)
}

// appendEnvFile appends text to the file the variable env names, or writes
// it to elsewhere when env is unset.
func appendEnvFile(env, what string, elsewhere io.Writer, text string) error {
	path := os.Getenv(env)
	if path == "" {
		if elsewhere == nil {
			return nil
		}
		_, err := io.WriteString(elsewhere, text)
		return err
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err == nil {
		_, err = f.WriteString(text)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", what, err)
	}
	return nil
}
