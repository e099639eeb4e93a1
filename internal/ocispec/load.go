package ocispec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ConfigName is the name of the configuration file inside a bundle.
const ConfigName = "config.json"

// Load reads <bundleDir>/config.json. Fields it does not know are ignored
// (newer runtime-spec versions and runtime extensions add fields), but the
// file must be one well-formed JSON object whose known fields have the right
// types. Errors name the file and, for malformed JSON, the line and column.
//
// Load does not check that the configuration makes sense; call Validate.
func Load(bundleDir string) (*specs.Spec, error) {
	data, err := ReadConfig(bundleDir)
	if err != nil {
		return nil, err
	}
	return Parse(bundleDir, data)
}

// ReadConfig returns the bytes of <bundleDir>/config.json, with Load's
// errors for a missing bundle or file; Parse parses them.
func ReadConfig(bundleDir string) ([]byte, error) {
	st, err := os.Stat(bundleDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("bundle %s does not exist", bundleDir)
	case err != nil:
		return nil, fmt.Errorf("bundle %s: %w", bundleDir, err)
	case !st.IsDir():
		return nil, fmt.Errorf("bundle %s is not a directory", bundleDir)
	}

	path := filepath.Join(bundleDir, ConfigName)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("bundle %s has no %s (create one with `berth-runtime spec`)", bundleDir, ConfigName)
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

// Parse is Load for the contents of <bundleDir>/config.json the caller
// already has (berthd hands the shim the bytes it wrote): the same rules,
// errors naming the same file; the bundle directory is not looked at
// (Validate checks the root filesystem in it).
func Parse(bundleDir string, data []byte) (*specs.Spec, error) {
	path := filepath.Join(bundleDir, ConfigName)
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("parse %s: file is empty", path)
	}
	if data[0] == 0xEF && len(data) >= 3 && data[1] == 0xBB && data[2] == 0xBF {
		return nil, fmt.Errorf("parse %s: file starts with a UTF-8 byte order mark, which JSON does not allow", path)
	}

	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, describeJSONError(path, data, err)
	}
	return &s, nil
}

// describeJSONError turns encoding/json errors into messages that point at a
// line and column of the file.
func describeJSONError(path string, data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := lineCol(data, syn.Offset)
		return fmt.Errorf("parse %s: line %d, column %d: invalid JSON: %s", path, line, col, syn.Error())
	case errors.As(err, &typ):
		line, col := lineCol(data, typ.Offset)
		field := typ.Field
		if field == "" {
			field = "(top level)"
		}
		return fmt.Errorf("parse %s: line %d, column %d: field %s: cannot use a JSON %s as %s",
			path, line, col, field, typ.Value, typ.Type)
	default:
		return fmt.Errorf("parse %s: %w", path, err)
	}
}

// lineCol converts a byte offset as reported by encoding/json (the number of
// bytes read when the error was noticed) into a 1-based line and column.
func lineCol(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	if offset < 0 {
		offset = 0
	}
	// The offset points just past the offending byte; report that byte.
	end := int(offset)
	if end > 0 {
		end--
	}
	line = 1 + bytes.Count(data[:end], []byte{'\n'})
	col = end - bytes.LastIndexByte(data[:end], '\n')
	return line, col
}
