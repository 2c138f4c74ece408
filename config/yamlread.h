/* yamlread.h - private to config/: reading YAML with libfyaml into checked values.
 *
 * jobspec.c and daemon.c share these helpers so every loader reports problems the same way:
 * "<source>:<line>: key '<dotted.path>': <what is wrong>". Lines are 1-based, as editors show them.
 * Not part of the config module's public contract (config.h); nothing outside config/ includes it.
 */
#ifndef RF_CONFIG_YAMLREAD_H
#define RF_CONFIG_YAMLREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libfyaml.h>

#include "error.h"

#define RF_YAML_PATH_MAX 256 /* longest dotted key path we build for messages */

/* Where messages go: the source name and the error to fill. */
typedef struct rf_yctx {
    const char *source; /* "job.yaml", "<string>" */
    rf_err_t *err;
} rf_yctx_t;

/* One key of a mapping's schema; rf_yaml_mapping() fills node and line. */
typedef struct rf_yfield {
    const char *key;      /* the schema's key, set by the caller */
    struct fy_node *node; /* its value, NULL when the key is absent */
    int line;             /* 1-based line of the key, 0 when absent */
} rf_yfield_t;

/* Reads a whole file, at most RF_SPEC_MAX_BYTES. *text is NUL-terminated; free() it.
 * RF_ENOENT "'<path>': no such file", RF_ETOOBIG, RF_EIO. */
int rf_yaml_read_file(const char *path, char **text, size_t *len, rf_err_t *err);

/* A parsed file: the parser owns the document, so both live and die together. */
typedef struct rf_ydoc {
    struct fy_diag *diag;
    struct fy_parser *parser;
    struct fy_document *doc;
    struct fy_node *root; /* a mapping */
} rf_ydoc_t;

/* Parses exactly one YAML document whose root must be a mapping into *d (zeroed first; release
 * with rf_yaml_release even on failure). Syntax errors become
 * "<source>:<line>: invalid YAML: <libfyaml's message>". */
int rf_yaml_parse(const rf_yctx_t *c, const char *text, size_t len, rf_ydoc_t *d);
void rf_yaml_release(rf_ydoc_t *d);

/* The 1-based line a node starts on, or fallback when the tree does not record one. */
int rf_yaml_node_line(struct fy_node *node, int fallback);

/* Sets RF_ECONFIG "<source>:<line>: key '<path>': <fmt...>" and returns RF_ECONFIG. */
int rf_yaml_error(const rf_yctx_t *c, int line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Sets RF_ENOMEM and returns it. */
int rf_yaml_nomem(const rf_yctx_t *c);

/* Builds "prefix.key" (or "key" when prefix is "") and "prefix[index]" into buf. */
const char *rf_yaml_path(char *buf, size_t size, const char *prefix, const char *key);
const char *rf_yaml_path_index(char *buf, size_t size, const char *prefix, size_t index);

/* Checks that node (at path, found on line) is a mapping whose keys are all in fields, each at
 * most once, and fills fields[i].node/.line. Unknown keys list the expected ones. */
int rf_yaml_mapping(const rf_yctx_t *c, struct fy_node *node, const char *path, int line,
                    rf_yfield_t *fields, size_t nfields);

/* Checks that node is a mapping of at most max scalar keys with no duplicates; no schema. */
int rf_yaml_free_mapping(const rf_yctx_t *c, struct fy_node *node, const char *path, int line,
                         size_t max);

/* Checks that node is a sequence of at most max items. */
int rf_yaml_sequence(const rf_yctx_t *c, struct fy_node *node, const char *path, int line,
                     size_t max);

/* The field with this key (which must be in the schema). */
rf_yfield_t *rf_yaml_field(rf_yfield_t *fields, size_t nfields, const char *key);

/* "required key missing" for field key of the mapping at map_path, reported on map_line. */
int rf_yaml_missing(const rf_yctx_t *c, const char *map_path, const char *key, int map_line);

/* Typed scalars. Each checks the node's kind and style (numbers and bools must be plain, so a
 * quoted "5" is a string, as YAML says), then the range, and reports what it got. line is where
 * to report when the node itself has no line. */
int rf_yaml_int(const rf_yctx_t *c, struct fy_node *node, int line, const char *path, int64_t min,
                int64_t max, int64_t *out);
int rf_yaml_uint64(const rf_yctx_t *c, struct fy_node *node, int line, const char *path,
                   uint64_t *out);
/* min_open: the value must be strictly greater than min. */
int rf_yaml_float(const rf_yctx_t *c, struct fy_node *node, int line, const char *path, double min,
                  bool min_open, double max, double *out);
int rf_yaml_bool(const rf_yctx_t *c, struct fy_node *node, int line, const char *path, bool *out);
/* Any scalar style; a plain null/empty is "nothing". The text must have no NUL or control
 * characters and at most maxlen bytes. *out is malloc'd. */
int rf_yaml_string(const rf_yctx_t *c, struct fy_node *node, int line, const char *path,
                   bool allow_empty, size_t maxlen, char **out);
/* One of '|'-separated choices; *out is malloc'd. */
int rf_yaml_enum(const rf_yctx_t *c, struct fy_node *node, int line, const char *path,
                 const char *choices, char **out);

/* True when word is one of the '|'-separated choices. */
bool rf_yaml_choice_has(const char *choices, const char *word);

/* Lexically normalizes an absolute path in place (no "//", ".", ".." segments, no trailing '/'). */
void rf_yaml_path_normalize(char *path);

/* A malloc'd absolute, normalized path: absolute ones as given, relative ones joined to base_dir
 * (absolute). NULL when out of memory. Lexical: the file need not exist. */
char *rf_yaml_path_resolve(const char *base_dir, const char *path);

/* Text parsers shared with the catalogue defaults (no node): full-string, base 10. */
bool rf_yaml_parse_int(const char *text, int64_t *out);
bool rf_yaml_parse_float(const char *text, double *out);

#endif
