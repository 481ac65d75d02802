package mapping

import (
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// Decode reads one Mapping from YAML, strictly: unknown keys are errors.
// (The configuration embeds the same shape under partners.<id>.columns.<type>.)
func Decode(r io.Reader) (*Mapping, error) {
	d := yaml.NewDecoder(io.LimitReader(r, 1<<20))
	d.KnownFields(true)
	var m Mapping
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMapping, err)
	}
	return &m, nil
}
