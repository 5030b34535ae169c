// The Inspect module: under construction; see shared/design/ARCHITECTURE.md.
