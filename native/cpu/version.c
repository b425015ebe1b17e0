/* Library identity, so the TypeScript side can check it loaded the build it expects. */
#include "nanorag.h"

const char *nr_version(void) { return NR_VERSION; }
