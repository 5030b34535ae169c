// The ModelKernel module: under construction; see shared/design/ARCHITECTURE.md.
