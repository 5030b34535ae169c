// The KernelLayout module: under construction; see shared/design/ARCHITECTURE.md.
