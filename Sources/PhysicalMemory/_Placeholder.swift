// The PhysicalMemory module: under construction; see shared/design/ARCHITECTURE.md.
