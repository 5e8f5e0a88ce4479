/* Uses libfelix through Meson's dependency fallback: prints the version and
 * the clock, and fails unless both are real. */
#include <felix/felix.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    uint64_t hz = 0;
    int src = 0;
    if (felix_clock_frequency(&hz, &src) < 0 || hz < 1000000)
        return 1;
    printf("libfelix %s, counter %llu Hz (%s)\n", felix_version(), (unsigned long long)hz,
           felix_clock_source_name(src));
    return strcmp(felix_version(), FELIX_VERSION_STRING) == 0 ? 0 : 1;
}
