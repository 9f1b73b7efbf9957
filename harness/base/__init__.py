"""The ground floor every other uses: user errors and their messages, whole-file writes, content digests, the device a cell trains on."""
