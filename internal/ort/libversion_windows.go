package ort

// probeLibrary is not implemented on Windows: the wrapper's own load reports a version mismatch there.
func probeLibrary(path string) (version string, hasAPI bool, err error) { return "", true, nil }
