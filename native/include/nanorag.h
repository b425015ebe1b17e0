/* nanorag native C ABI: opaque handles, plain pointers, int status plus a readable error string. */
#ifndef NANORAG_H
#define NANORAG_H

#define NR_VERSION "0.1.0"

const char *nr_version(void);

#endif
