// jemalloc's built-in options for the executables linked with it
// (vellum_use_jemalloc in cmake/vellum.cmake); MALLOC_CONF still overrides
// them at run time.
//
// slab_sizes: a map page is one allocation of 2–5 KiB (MapNode), and a batch
// of 1,000 puts builds ~2,000 of them. jemalloc's default slab for the
// 2,049–16,384-byte size classes holds 1 to 8 regions (the 4,096-byte class
// exactly one), so most of those allocations went to the page allocator for a
// new slab. 32-page (128 KiB) slabs hold 8 to 51 regions; the cost is at
// most one partly used slab per size class and arena, against +7.7 % batch
// apply throughput (docs/BENCHMARKS.md, section 4f).
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "slab_sizes:2049-16384:32";
}
