"""The local Google Cloud stack: emulators and functions as background processes."""
