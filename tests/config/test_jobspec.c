/* test_jobspec.c - job spec loading: every error path names file, line and key exactly; parsed
 * values, defaults and path resolution; the example spec loads; the pass catalogue is sane. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "cfgtest.h"

#define S_COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define S_BASE "/srv/reelfarm-jobs"
#define S_HEAD "version: 1\ninput: in.mov\noutput: out.mp4\n" /* lines 1-3 of most cases */

typedef struct s_case {
    const char *what;
    const char *yaml;
    int code;
    const char *msg; /* the whole message, or its start when it ends in "..." */
} s_case_t;

static const s_case_t s_errors[] = {
    /* unknown keys, top level and nested */
    {"unknown top key", S_HEAD "inptu: x.mov\n", RF_ECONFIG,
     "job.yaml:4: key 'inptu': unknown key (expected one of: version, name, input, output, seed, "
     "priority, chunking, pipeline, encode, audio, provenance, requirements, critic)"},
    /* critic gate */
    {"critic without threshold", S_HEAD "critic: {model: c.onnx}\n", RF_ECONFIG,
     "job.yaml:4: key 'critic.threshold': ..."},
    {"critic without model", S_HEAD "critic: {threshold: 0.5}\n", RF_ECONFIG,
     "job.yaml:4: key 'critic.model': ..."},
    {"critic unknown key", S_HEAD "critic: {model: c.onnx, threshold: 0.5, retries: 2}\n", RF_ECONFIG,
     "job.yaml:4: key 'critic.retries': unknown key (expected one of: model, threshold, "
     "max_rerenders, input_min, input_max, device)"},
    {"critic too many re-renders", S_HEAD "critic: {model: c.onnx, threshold: 0.5, max_rerenders: 17}\n",
     RF_ECONFIG, "job.yaml:4: key 'critic.max_rerenders': ..."},
    {"critic bad device", S_HEAD "critic: {model: c.onnx, threshold: 0.5, device: tpu}\n", RF_ECONFIG,
     "job.yaml:4: key 'critic.device': ..."},
    {"critic empty input range", S_HEAD "critic: {model: c.onnx, threshold: 0, input_min: 1}\n",
     RF_ECONFIG, "job.yaml:4: key 'critic.input_max': equals input_min: the input range is empty"},
    {"unknown requirements key", S_HEAD "requirements: {gpus: 2}\n", RF_ECONFIG,
     "job.yaml:4: key 'requirements.gpus': unknown key (expected one of: gpu, vram_mib)"},
    {"negative vram", S_HEAD "requirements: {vram_mib: -1}\n", RF_ECONFIG,
     "job.yaml:4: key 'requirements.vram_mib': ..."},
    {"gpu not a bool", S_HEAD "requirements: {gpu: maybe}\n", RF_ECONFIG,
     "job.yaml:4: key 'requirements.gpu': ..."},
    {"unknown chunking key", S_HEAD "chunking: {split: scene, targt: 5}\n", RF_ECONFIG,
     "job.yaml:4: key 'chunking.targt': unknown key (expected one of: split, target_seconds, "
     "max_seconds, context_frames, seam_overlap, scene_threshold)"},
    {"unknown encode key", S_HEAD "encode:\n  codec: libx264\n  crff: 5\n", RF_ECONFIG,
     "job.yaml:6: key 'encode.crff': unknown key (expected one of: codec, crf, preset, pix_fmt, "
     "bitrate, gop, options)"},
    {"unknown provenance key", S_HEAD "provenance:\n  watermak: true\n", RF_ECONFIG,
     "job.yaml:5: key 'provenance.watermak': unknown key (expected one of: subjects, watermark, "
     "depicts, label)"},
    {"unknown subject key",
     S_HEAD "provenance:\n  subjects:\n    - {name: a, basis: fictional, "
            "age: 3}\n",
     RF_ECONFIG,
     "job.yaml:6: key 'provenance.subjects[0].age': unknown key (expected one of: name, basis, "
     "release)"},
    /* required keys */
    {"missing version", "input: a.mov\noutput: b.mp4\n", RF_ECONFIG,
     "job.yaml:1: key 'version': required key missing"},
    {"missing input", "version: 1\noutput: b.mp4\n", RF_ECONFIG,
     "job.yaml:1: key 'input': required key missing"},
    {"missing output", "version: 1\ninput: a.mov\n", RF_ECONFIG,
     "job.yaml:1: key 'output': required key missing"},
    {"missing after comments", "# a comment\n\nversion: 1\noutput: b.mp4\n", RF_ECONFIG,
     "job.yaml:3: key 'input': required key missing"},
    /* version */
    {"version 2", "version: 2\ninput: a.mov\noutput: b.mp4\n", RF_ECONFIG,
     "job.yaml:1: key 'version': unsupported version 2 (this build reads version 1)"},
    {"version quoted", "version: \"1\"\ninput: a.mov\noutput: b.mp4\n", RF_ECONFIG,
     "job.yaml:1: key 'version': expected an integer in 0..2147483647, got the quoted string '1' "
     "(numbers and booleans take no quotes)"},
    /* scalars of each kind: integer, unsigned, float, bool, string, enum */
    {"seed negative", S_HEAD "seed: -1\n", RF_ECONFIG,
     "job.yaml:4: key 'seed': expected a non-negative integer up to 18446744073709551615, got "
     "'-1'"},
    {"seed float", S_HEAD "seed: 1.5\n", RF_ECONFIG,
     "job.yaml:4: key 'seed': expected a non-negative integer up to 18446744073709551615, got "
     "'1.5'"},
    {"seed too big", S_HEAD "seed: 18446744073709551616\n", RF_ECONFIG,
     "job.yaml:4: key 'seed': expected a non-negative integer up to ..."},
    {"priority over", S_HEAD "priority: 101\n", RF_ECONFIG,
     "job.yaml:4: key 'priority': expected an integer in 0..100, got '101'"},
    {"priority word", S_HEAD "priority: high\n", RF_ECONFIG,
     "job.yaml:4: key 'priority': expected an integer in 0..100, got 'high'"},
    {"priority quoted", S_HEAD "priority: '5'\n", RF_ECONFIG,
     "job.yaml:4: key 'priority': expected an integer in 0..100, got the quoted string '5' "
     "(numbers and booleans take no quotes)"},
    {"priority mapping", S_HEAD "priority: {a: 1}\n", RF_ECONFIG,
     "job.yaml:4: key 'priority': expected an integer in 0..100, got a mapping"},
    {"priority empty", S_HEAD "priority:\n", RF_ECONFIG,
     "job.yaml:4: key 'priority': expected an integer in 0..100, got nothing"},
    {"priority octal", S_HEAD "priority: 010\n", RF_ECONFIG,
     "job.yaml:4: key 'priority': expected an integer in 0..100, got '010'"},
    {"name mapping", S_HEAD "name: {a: 1}\n", RF_ECONFIG,
     "job.yaml:4: key 'name': expected a string, got a mapping"},
    {"name empty", S_HEAD "name: ''\n", RF_ECONFIG, "job.yaml:4: key 'name': must not be empty"},
    {"name null", S_HEAD "name: ~\n", RF_ECONFIG,
     "job.yaml:4: key 'name': expected a string, got nothing"},
    {"name control char", S_HEAD "name: \"a\\tb\"\n", RF_ECONFIG,
     "job.yaml:4: key 'name': control character (byte 0x09) in the value"},
    {"input sequence", "version: 1\ninput: [a, b]\noutput: b.mp4\n", RF_ECONFIG,
     "job.yaml:2: key 'input': expected a string, got a sequence"},
    {"audio enum", S_HEAD "audio: mute\n", RF_ECONFIG,
     "job.yaml:4: key 'audio': expected one of copy|none, got 'mute'"},
    {"audio bool-like", S_HEAD "audio: true\n", RF_ECONFIG,
     "job.yaml:4: key 'audio': expected one of copy|none, got 'true'"},
    {"watermark yes", S_HEAD "provenance: {watermark: yes}\n", RF_ECONFIG,
     "job.yaml:4: key 'provenance.watermark': expected true or false, got 'yes'"},
    {"watermark quoted", S_HEAD "provenance: {watermark: \"true\"}\n", RF_ECONFIG,
     "job.yaml:4: key 'provenance.watermark': expected true or false, got the quoted string "
     "'true' (numbers and booleans take no quotes)"},
    {"watermark True", S_HEAD "provenance: {watermark: True}\n", RF_ECONFIG,
     "job.yaml:4: key 'provenance.watermark': expected true or false, got 'True'"},
    /* chunking */
    {"chunking scalar", S_HEAD "chunking: 5\n", RF_ECONFIG,
     "job.yaml:4: key 'chunking': expected a mapping, got '5'"},
    {"chunking split", S_HEAD "chunking: {split: shot}\n", RF_ECONFIG,
     "job.yaml:4: key 'chunking.split': expected one of scene|keyframe, got 'shot'"},
    {"target zero", S_HEAD "chunking: {target_seconds: 0}\n", RF_ECONFIG,
     "job.yaml:4: key 'chunking.target_seconds': expected a number greater than 0 and at most "
     "3600, got '0'"},
    {"target nan", S_HEAD "chunking: {target_seconds: .nan}\n", RF_ECONFIG,
     "job.yaml:4: key 'chunking.target_seconds': expected a number greater than 0 and at most "
     "3600, got '.nan'"},
    {"max below target default", S_HEAD "chunking: {target_seconds: 30}\n", RF_ECONFIG,
     "job.yaml:4: key 'chunking.max_seconds': must be at least target_seconds (30), got 20 (the "
     "default; set max_seconds)"},
    {"max below target", S_HEAD "chunking:\n  target_seconds: 8\n  max_seconds: 4\n", RF_ECONFIG,
     "job.yaml:6: key 'chunking.max_seconds': must be at least target_seconds (8), got 4"},
    {"context frames", S_HEAD "chunking: {context_frames: 300}\n", RF_ECONFIG,
     "job.yaml:4: key 'chunking.context_frames': expected an integer in 0..256, got '300'"},
    {"seam overlap", S_HEAD "chunking: {seam_overlap: -1}\n", RF_ECONFIG,
     "job.yaml:4: key 'chunking.seam_overlap': expected an integer in 0..64, got '-1'"},
    {"scene threshold", S_HEAD "chunking: {scene_threshold: 1.5}\n", RF_ECONFIG,
     "job.yaml:4: key 'chunking.scene_threshold': expected a number in 0..1, got '1.5'"},
    /* pipeline */
    {"pipeline mapping", S_HEAD "pipeline: {pass: deflicker}\n", RF_ECONFIG,
     "job.yaml:4: key 'pipeline': expected a sequence, got a mapping"},
    {"pipeline item scalar", S_HEAD "pipeline: [deflicker]\n", RF_ECONFIG,
     "job.yaml:4: key 'pipeline[0]': expected a mapping, got 'deflicker'"},
    {"pass missing", S_HEAD "pipeline:\n  - {strength: 0.5}\n", RF_ECONFIG,
     "job.yaml:5: key 'pipeline[0].pass': required key missing"},
    {"pass unknown", S_HEAD "pipeline:\n  - pass: deflicker\n  - pass: emboss\n", RF_ECONFIG,
     "job.yaml:6: key 'pipeline[1].pass': unknown pass 'emboss' (known: color-match, deflicker, "
     "grade, onnx, scale, sharpen; a pass from a worker plugin needs 'plugin: true')"},
    {"internal param", S_HEAD "pipeline:\n  - {pass: color-match, scene_ref: '0.5,0,0,0.1,0,0'}\n",
     RF_ECONFIG,
     "job.yaml:5: key 'pipeline[0].scene_ref': set by the coordinator for pass 'color-match', not "
     "in a job spec"},
    {"color-match reference", S_HEAD "pipeline:\n  - {pass: color-match, reference: '1,2,3'}\n",
     RF_ECONFIG,
     "job.yaml:5: key 'pipeline[0]': pass 'color-match': parameter 'reference': expected 'source' "
     "or six numbers 'L,a,b,Lstd,astd,bstd' (Oklab means then standard deviations >= 0), got "
     "'1,2,3'"},
    {"color-match negative std", S_HEAD "pipeline:\n  - {pass: color-match, reference: '0.5,0,0,-1,0,0'}\n",
     RF_ECONFIG,
     "job.yaml:5: key 'pipeline[0]': pass 'color-match': parameter 'reference': expected 'source' "
     "or six numbers 'L,a,b,Lstd,astd,bstd' (Oklab means then standard deviations >= 0), got "
     "'0.5,0,0,-1,0,0'"},
    {"scale no size", S_HEAD "pipeline:\n  - {pass: scale}\n", RF_ECONFIG,
     "job.yaml:5: key 'pipeline[0]': pass 'scale': parameters 'width' and 'height' are both 0: give "
     "at least one (the other 0 keeps the aspect ratio)"},
    {"scale width range", S_HEAD "pipeline:\n  - {pass: scale, width: 20000}\n", RF_ECONFIG,
     "job.yaml:5: key 'pipeline[0].width': expected an integer in 0..16384, got '20000'"},
    {"scale filter", S_HEAD "pipeline:\n  - {pass: scale, width: 640, filter: nearest}\n",
     RF_ECONFIG,
     "job.yaml:5: key 'pipeline[0].filter': expected one of lanczos|bicubic, got 'nearest'"},
    {"plugin clashes", S_HEAD "pipeline:\n  - {pass: grade, plugin: true}\n", RF_ECONFIG,
     "job.yaml:5: key 'pipeline[0].plugin': pass 'grade' is built in, not a plugin: drop "
     "'plugin: true'"},
    {"plugin bad name", S_HEAD "pipeline:\n  - {pass: My Pass, plugin: true}\n", RF_ECONFIG,
     "job.yaml:5: key 'pipeline[0].pass': plugin pass names are 1..63 lowercase letters, digits, "
     "'_' and '-', got 'My Pass'"},
    {"plugin param nested", S_HEAD "pipeline:\n  - {pass: invert, plugin: true, gain: [1]}\n",
     RF_ECONFIG, "job.yaml:5: key 'pipeline[0].gain': expected a single value, got a sequence"},
    {"plugin flag type", S_HEAD "pipeline:\n  - {pass: invert, plugin: yes please}\n", RF_ECONFIG,
     "job.yaml:5: key 'pipeline[0].plugin': expected true or false, got 'yes please'"},
    {"pass not a string", S_HEAD "pipeline:\n  - pass: [a]\n", RF_ECONFIG,
     "job.yaml:5: key 'pipeline[0].pass': expected a string, got a sequence"},
    {"bad role", S_HEAD "pipeline:\n  - {pass: deflicker, role: generate}\n", RF_ECONFIG,
     "job.yaml:5: key 'pipeline[0].role': pass 'deflicker' cannot take role 'generate' (allowed: "
     "refine)"},
    {"unknown param", S_HEAD "pipeline:\n  - pass: deflicker\n    radius: 3\n", RF_ECONFIG,
     "job.yaml:6: key 'pipeline[0].radius': unknown key (expected one of: pass, role, plugin, strength, "
     "window)"},
    {"param float range", S_HEAD "pipeline:\n  - {pass: deflicker, strength: 1.5}\n", RF_ECONFIG,
     "job.yaml:5: key 'pipeline[0].strength': expected a number in 0..1, got '1.5'"},
    {"param float type", S_HEAD "pipeline:\n  - {pass: deflicker, strength: strong}\n", RF_ECONFIG,
     "job.yaml:5: key 'pipeline[0].strength': expected a number in 0..1, got 'strong'"},
    {"param int type", S_HEAD "pipeline:\n  - {pass: deflicker, window: 2.5}\n", RF_ECONFIG,
     "job.yaml:5: key 'pipeline[0].window': expected an integer in 1..120, got '2.5'"},
    {"param int range", S_HEAD "pipeline:\n  -\n    pass: deflicker\n    window: 0\n", RF_ECONFIG,
     "job.yaml:7: key 'pipeline[0].window': expected an integer in 1..120, got '0'"},
    {"param duplicate",
     S_HEAD "pipeline:\n  - pass: deflicker\n    strength: 0.1\n    strength: 0.2\n", RF_ECONFIG,
     "job.yaml:7: key 'pipeline[0].strength': duplicate key (first given on line 6)"},
    /* encode */
    {"encode scalar", S_HEAD "encode: x264\n", RF_ECONFIG,
     "job.yaml:4: key 'encode': expected a mapping, got 'x264'"},
    {"codec missing", S_HEAD "encode: {crf: 20}\n", RF_ECONFIG,
     "job.yaml:4: key 'encode.codec': required key missing"},
    {"codec unknown", S_HEAD "encode: {codec: h266}\n", RF_ECONFIG,
     "job.yaml:4: key 'encode.codec': expected one of "
     "libx264|libx265|libsvtav1|ffv1|prores_ks|h264_nvenc|hevc_nvenc, got 'h266'"},
    {"crf word", S_HEAD "encode:\n  codec: libx264\n  crf: high\n", RF_ECONFIG,
     "job.yaml:6: key 'encode.crf': expected an integer in 0..51, got 'high'"},
    {"crf x265 range", S_HEAD "encode: {codec: libx265, crf: 52}\n", RF_ECONFIG,
     "job.yaml:4: key 'encode.crf': expected an integer in 0..51, got '52'"},
    {"crf svtav1 range", S_HEAD "encode: {codec: libsvtav1, crf: 64}\n", RF_ECONFIG,
     "job.yaml:4: key 'encode.crf': expected an integer in 0..63, got '64'"},
    {"crf ffv1", S_HEAD "encode: {codec: ffv1, crf: 0}\n", RF_ECONFIG,
     "job.yaml:4: key 'encode.crf': codec 'ffv1' takes no crf (it is lossless)"},
    {"crf prores", S_HEAD "encode: {codec: prores_ks, crf: 10}\n", RF_ECONFIG,
     "job.yaml:4: key 'encode.crf': codec 'prores_ks' takes no crf (set bitrate or options "
     "instead)"},
    {"preset spaces", S_HEAD "encode: {codec: libx264, preset: very fast}\n", RF_ECONFIG,
     "job.yaml:4: key 'encode.preset': expected a preset name such as 'medium' or 'p4', got "
     "'very fast'"},
    {"pix_fmt bad", S_HEAD "encode: {codec: libx264, pix_fmt: YUV420P}\n", RF_ECONFIG,
     "job.yaml:4: key 'encode.pix_fmt': expected a pixel format name such as 'yuv420p', got "
     "'YUV420P'"},
    {"bitrate word", S_HEAD "encode: {codec: libx264, bitrate: fast}\n", RF_ECONFIG,
     "job.yaml:4: key 'encode.bitrate': expected bits per second such as 8000000, '8M' or '800k' "
     "(1 to 10G), got 'fast'"},
    {"bitrate zero", S_HEAD "encode: {codec: libx264, bitrate: 0}\n", RF_ECONFIG,
     "job.yaml:4: key 'encode.bitrate': expected bits per second such as ..."},
    {"bitrate unit", S_HEAD "encode: {codec: libx264, bitrate: 8Mb}\n", RF_ECONFIG,
     "job.yaml:4: key 'encode.bitrate': expected bits per second such as ..."},
    {"gop range", S_HEAD "encode: {codec: libx264, gop: 20000}\n", RF_ECONFIG,
     "job.yaml:4: key 'encode.gop': expected an integer in 0..10000, got '20000'"},
    {"options scalar", S_HEAD "encode: {codec: libx264, options: tune}\n", RF_ECONFIG,
     "job.yaml:4: key 'encode.options': expected a mapping, got 'tune'"},
    {"options nested", S_HEAD "encode:\n  codec: libx264\n  options:\n    tune: [a]\n", RF_ECONFIG,
     "job.yaml:7: key 'encode.options.tune': expected a single value, got a sequence"},
    {"options null", S_HEAD "encode:\n  codec: libx264\n  options:\n    tune:\n", RF_ECONFIG,
     "job.yaml:7: key 'encode.options.tune': expected a string, got nothing"},
    {"options bad name", S_HEAD "encode:\n  codec: libx264\n  options:\n    Tune: film\n",
     RF_ECONFIG,
     "job.yaml:7: key 'encode.options.Tune': option names are lowercase letters, digits, '_' and "
     "'-'"},
    {"options duplicate",
     S_HEAD "encode:\n  codec: libx264\n  options:\n    tune: film\n"
            "    tune: grain\n",
     RF_ECONFIG, "job.yaml:8: key 'encode.options.tune': duplicate key (first given on line 7)"},
    /* provenance */
    {"subjects mapping", S_HEAD "provenance: {subjects: {name: a}}\n", RF_ECONFIG,
     "job.yaml:4: key 'provenance.subjects': expected a sequence, got a mapping"},
    {"subject basis", S_HEAD "provenance:\n  subjects:\n    - name: Ada\n      basis: vibes\n",
     RF_ECONFIG,
     "job.yaml:7: key 'provenance.subjects[0].basis': expected one of "
     "consent|public-domain-historical|licensed|fictional, got 'vibes'"},
    {"subject name missing", S_HEAD "provenance:\n  subjects:\n    - basis: consent\n", RF_ECONFIG,
     "job.yaml:6: key 'provenance.subjects[0].name': required key missing"},
    {"subject basis missing", S_HEAD "provenance:\n  subjects:\n    - {name: Ada}\n", RF_ECONFIG,
     "job.yaml:6: key 'provenance.subjects[0].basis': required key missing"},
    /* consent: a job that depicts real people names each with a basis */
    {"real people, no subject", S_HEAD "provenance: {depicts: real-people}\n", RF_ECONFIG,
     "job.yaml:4: key 'provenance.subjects': the job depicts real people but names no subject: add "
     "each person under provenance.subjects as {name: ..., basis: "
     "consent|public-domain-historical|licensed, release: ...} (consent and licensed need the "
     "release or licence reference)"},
    {"real people, fictional only",
     S_HEAD "provenance:\n  depicts: real-people\n  subjects:\n    - {name: Bob, basis: fictional}\n",
     RF_ECONFIG,
     "job.yaml:6: key 'provenance.subjects': the job depicts real people but names only fictional "
     "subjects: add each person..."},
    {"consent without release",
     S_HEAD "provenance:\n  subjects:\n    - {name: J. Doe, basis: consent}\n", RF_ECONFIG,
     "job.yaml:6: key 'provenance.subjects[0].release': subject 'J. Doe' has basis 'consent' but no "
     "release reference: add release: <the signed release's id or file>"},
    {"licensed with empty release",
     S_HEAD "provenance:\n  subjects:\n    - name: Eve\n      basis: licensed\n      release: ''\n",
     RF_ECONFIG,
     "job.yaml:8: key 'provenance.subjects[0].release': subject 'Eve' has basis 'licensed' but no "
     "release reference: add release: <the signed licence's id or file>"},
    {"no-real-people contradicted",
     S_HEAD "provenance:\n  depicts: no-real-people\n  subjects:\n"
            "    - {name: Ada, basis: public-domain-historical}\n",
     RF_ECONFIG,
     "job.yaml:5: key 'provenance.depicts': 'no-real-people' but subject 'Ada' has basis "
     "'public-domain-historical' (a real person): set depicts: real-people, or give the subject "
     "basis: fictional"},
    {"depicts unknown", S_HEAD "provenance: {depicts: maybe}\n", RF_ECONFIG,
     "job.yaml:4: key 'provenance.depicts': expected one of real-people|no-real-people, got 'maybe'"},
    {"watermark off", S_HEAD "provenance: {watermark: false}\n", RF_ECONFIG,
     "job.yaml:4: key 'provenance.watermark': the invisible watermark cannot be turned off (every "
     "output of the farm is marked as synthetic): remove the key"},
    {"label off for real people",
     S_HEAD "provenance:\n  subjects: [{name: A, basis: consent, release: r1}]\n  label: false\n",
     RF_ECONFIG,
     "job.yaml:6: key 'provenance.label': the visible AI-generated label cannot be turned off for a "
     "job that depicts real people"},
    /* duplicates, aliases, tags */
    {"duplicate top", "version: 1\ninput: a.mov\noutput: b.mp4\ninput: c.mov\n", RF_ECONFIG,
     "job.yaml:4: key 'input': duplicate key (first given on line 2)"},
    {"duplicate nested", S_HEAD "chunking:\n  split: scene\n  split: keyframe\n", RF_ECONFIG,
     "job.yaml:6: key 'chunking.split': duplicate key (first given on line 5)"},
    {"alias", "version: 1\ninput: &x a.mov\noutput: b.mp4\nname: *x\n", RF_ECONFIG,
     "job.yaml:4: key 'name': aliases (*name) are not supported; write the value"},
    {"tag", S_HEAD "priority: !!int 5\n", RF_ECONFIG,
     "job.yaml:4: key 'priority': tags (!tag) are not supported; write the value"},
    /* the document itself */
    {"syntax error", "version: 1\ninput: a.mov\noutput: [b.mp4\n", RF_ECONFIG,
     "job.yaml:4: invalid YAML: flow sequence without a closing bracket"},
    {"syntax nested mapping", "version: 1\ninput: a: b\n", RF_ECONFIG,
     "job.yaml:2: invalid YAML: ..."},
    {"syntax unclosed quote", "version: 1\ninput: \"a.mov\noutput: b\n", RF_ECONFIG,
     "job.yaml:2: invalid YAML: ..."},
    {"syntax indentation", "version: 1\nchunking:\n  split: scene\n    max: 3\n", RF_ECONFIG,
     "job.yaml:3: invalid YAML: ..."},
    {"two documents", "version: 1\ninput: a\noutput: b\n---\nversion: 1\n", RF_ECONFIG,
     "job.yaml:5: invalid YAML: more than one document (one '---' section only)"},
    {"top sequence", "- version: 1\n- input: a\n", RF_ECONFIG,
     "job.yaml:1: expected a mapping of keys at the top (starting with 'version: 1'), got a "
     "sequence"},
    {"top scalar", "\n\nhello\n", RF_ECONFIG,
     "job.yaml:3: expected a mapping of keys at the top (starting with 'version: 1'), got a "
     "scalar"},
    {"empty", "", RF_ECONFIG,
     "job.yaml:1: expected a mapping of keys at the top (starting with 'version: 1'), got "
     "nothing"},
    {"only comments", "# nothing here\n", RF_ECONFIG,
     "job.yaml:1: expected a mapping of keys at the top (starting with 'version: 1'), got "
     "nothing"},
    /* paths */
    {"input is output", "version: 1\ninput: a.mov\noutput: ./x/../a.mov\n", RF_ECONFIG,
     "job.yaml:3: key 'output': is the same file as input ('/srv/reelfarm-jobs/a.mov'); the render would "
     "overwrite its own source"},
    {"input is output absolute", "version: 1\ninput: a.mov\noutput: /srv/reelfarm-jobs//a.mov\n",
     RF_ECONFIG, "job.yaml:3: key 'output': is the same file as input ..."},
};

/* True when err matches; prints the difference otherwise. */
static bool s_message_matches(const char *what, const rf_err_t *err, int code, const char *msg)
{
    size_t n = strlen(msg);
    bool prefix = n >= 3 && !strcmp(msg + n - 3, "...");

    if (err->code != code || (prefix ? strncmp(err->msg, msg, n - 3) : strcmp(err->msg, msg))) {
        print_error("case '%s':\n  want %d '%s'\n  got  %d '%s'\n", what, code, msg, err->code,
                    err->msg);
        return false;
    }
    return true;
}

static void s_assert_message(const char *what, const rf_err_t *err, int code, const char *msg)
{
    if (!s_message_matches(what, err, code, msg))
        fail();
}

/* Loads len bytes of yaml as job.yaml under S_BASE: it must fail with code and msg (see s_case_t). */
static void s_assert_refused(const char *what, const char *yaml, size_t len, int code,
                             const char *msg)
{
    rf_job_spec_t *spec = NULL;
    rf_err_t err = {0};

    assert_int_equal(rf_job_spec_load_string(yaml, len, "job.yaml", S_BASE, &spec, &err), code);
    s_assert_message(what, &err, code, msg);
}

static void test_errors(void **state)
{
    size_t failed = 0;

    (void)state;
    for (size_t i = 0; i < S_COUNT(s_errors); i++) {
        const s_case_t *c = &s_errors[i];
        rf_job_spec_t *spec = NULL;
        rf_err_t err = {0};
        int rc = rf_job_spec_load_string(c->yaml, strlen(c->yaml), "job.yaml", S_BASE, &spec, &err);
        assert_int_equal(rc, err.code);
        assert_null(spec);
        failed += !s_message_matches(c->what, &err, c->code, c->msg);
    }
    assert_int_equal(failed, 0); /* every mismatch was printed above */
}

/* A spec whose pipeline is n deflicker passes, in yaml (cap bytes); returns its length. */
static size_t s_passes_yaml(char *yaml, size_t cap, int n)
{
    size_t used = (size_t)snprintf(yaml, cap, "%spipeline:\n", S_HEAD);
    for (int i = 0; i < n; i++)
        used += (size_t)snprintf(yaml + used, cap - used, "  - pass: deflicker\n");
    assert_true(used < cap);
    return used;
}

static void test_too_many_passes(void **state)
{
    char yaml[4096];
    size_t used;
    rf_job_spec_t *spec = NULL;
    rf_err_t err = {0};

    (void)state;
    used = s_passes_yaml(yaml, sizeof(yaml), RF_SPEC_MAX_PASSES + 1);
    s_assert_refused("too many passes", yaml, used, RF_ECONFIG,
                     "job.yaml:4: key 'pipeline': more than 32 items");

    /* Exactly the cap loads. */
    used = s_passes_yaml(yaml, sizeof(yaml), RF_SPEC_MAX_PASSES);
    assert_int_equal(rf_job_spec_load_string(yaml, used, "job.yaml", S_BASE, &spec, &err), 0);
    assert_int_equal(spec->npasses, RF_SPEC_MAX_PASSES);
    rf_job_spec_destroy(&spec);
}

static void test_too_many_options_and_subjects(void **state)
{
    size_t cap = 64 * 1024, used;
    char *yaml = malloc(cap);

    (void)state;
    assert_non_null(yaml);
    used = (size_t)snprintf(yaml, cap, "%sencode:\n  codec: libx264\n  options:\n", S_HEAD);
    for (int i = 0; i < RF_SPEC_MAX_PARAMS + 1; i++)
        used += (size_t)snprintf(yaml + used, cap - used, "    o%d: 1\n", i);
    s_assert_refused("too many options", yaml, used, RF_ECONFIG,
                     "job.yaml:6: key 'encode.options': more than 64 keys");

    used = (size_t)snprintf(yaml, cap, "%sprovenance:\n  subjects:\n", S_HEAD);
    for (int i = 0; i < RF_SPEC_MAX_SUBJECTS + 1; i++)
        used +=
            (size_t)snprintf(yaml + used, cap - used, "    - {name: s%d, basis: fictional}\n", i);
    s_assert_refused("too many subjects", yaml, used, RF_ECONFIG,
                     "job.yaml:5: key 'provenance.subjects': more than 256 items");
    free(yaml);
}

static void test_string_too_big(void **state)
{
    size_t len = RF_SPEC_MAX_BYTES + 1;
    char *yaml = malloc(len);
    rf_job_spec_t *spec = NULL;
    rf_err_t err = {0};

    (void)state;
    assert_non_null(yaml);
    memset(yaml, '#', len);
    assert_int_equal(rf_job_spec_load_string(yaml, len, "job.yaml", S_BASE, &spec, &err),
                     RF_ETOOBIG);
    assert_null(spec);
    assert_non_null(strstr(err.msg, "over the limit"));
    free(yaml);
}

static void test_relative_base_dir_refused(void **state)
{
    const char *yaml = S_HEAD;
    rf_job_spec_t *spec = NULL;
    rf_err_t err = {0};

    (void)state;
    assert_int_equal(rf_job_spec_load_string(yaml, strlen(yaml), "job.yaml", "jobs", &spec, &err),
                     RF_EINVAL);
    assert_null(spec);
}

static rf_job_spec_t *s_load_ok(const char *yaml)
{
    rf_job_spec_t *spec = NULL;
    rf_err_t err = {0};
    int rc = rf_job_spec_load_string(yaml, strlen(yaml), "job.yaml", S_BASE, &spec, &err);

    if (rc != 0) {
        print_error("unexpected error: %s\n", err.msg);
        fail();
    }
    assert_non_null(spec);
    return spec;
}

static void test_requirements(void **state)
{
    (void)state;
    rf_job_spec_t *spec = s_load_ok(S_HEAD);
    bool gpu = true;
    int64_t vram = -1;
    rf_job_spec_requirements(spec, &gpu, &vram);
    assert_false(gpu);
    assert_int_equal(vram, 0);
    rf_job_spec_destroy(&spec);
    spec = s_load_ok(S_HEAD "requirements: {gpu: true}\n");
    rf_job_spec_requirements(spec, &gpu, &vram);
    assert_true(gpu);
    assert_int_equal(vram, 0);
    rf_job_spec_destroy(&spec);
    /* VRAM implies a GPU */
    spec = s_load_ok(S_HEAD "requirements: {vram_mib: 20000}\n");
    rf_job_spec_requirements(spec, &gpu, &vram);
    assert_true(gpu);
    assert_int_equal(vram, 20000);
    rf_job_spec_destroy(&spec);
}

static void test_critic(void **state)
{
    (void)state;
    rf_job_spec_t *spec = s_load_ok(S_HEAD);
    assert_null(spec->critic.model);
    rf_job_spec_destroy(&spec);
    spec = s_load_ok(S_HEAD "critic: {model: models/critic.onnx, threshold: 0.6}\n");
    assert_string_equal(spec->critic.model, S_BASE "/models/critic.onnx");
    assert_float_equal(spec->critic.threshold, 0.6, 0);
    assert_int_equal(spec->critic.max_rerenders, 2);
    assert_float_equal(spec->critic.input_min, 0, 0);
    assert_float_equal(spec->critic.input_max, 1, 0);
    assert_string_equal(spec->critic.device, "auto");
    rf_job_spec_destroy(&spec);
    spec = s_load_ok(S_HEAD "critic:\n  model: /m/c.onnx\n  threshold: -2.5\n  max_rerenders: 0\n"
                            "  input_min: -1\n  input_max: 1\n  device: gpu\n");
    assert_string_equal(spec->critic.model, "/m/c.onnx");
    assert_float_equal(spec->critic.threshold, -2.5, 0);
    assert_int_equal(spec->critic.max_rerenders, 0);
    assert_float_equal(spec->critic.input_min, -1, 0);
    assert_string_equal(spec->critic.device, "gpu");
    rf_job_spec_destroy(&spec);
}

static void test_defaults(void **state)
{
    rf_job_spec_t *spec = s_load_ok("version: 1\ninput: plates/in.v2.mov\noutput: out/o.mp4\n");

    (void)state;
    assert_int_equal(spec->version, 1);
    assert_string_equal(spec->source, "job.yaml");
    assert_string_equal(spec->base_dir, S_BASE);
    assert_string_equal(spec->name, "in.v2");
    assert_string_equal(spec->input, S_BASE "/plates/in.v2.mov");
    assert_string_equal(spec->output, S_BASE "/out/o.mp4");
    assert_true(spec->seed == 0);
    assert_int_equal(spec->priority, 50);
    assert_int_equal(spec->chunking.split, RF_SPLIT_SCENE);
    assert_true(spec->chunking.target_seconds == 6);
    assert_true(spec->chunking.max_seconds == 20);
    assert_int_equal(spec->chunking.context_frames, 0);
    assert_int_equal(spec->chunking.seam_overlap, 0);
    assert_true(spec->chunking.scene_threshold == 0.1);
    assert_int_equal(spec->npasses, 0);
    assert_string_equal(spec->encode.codec, "libx264");
    assert_int_equal(spec->encode.crf, 18);
    assert_string_equal(spec->encode.preset, "medium");
    assert_null(spec->encode.pix_fmt);
    assert_true(spec->encode.bitrate == 0);
    assert_int_equal(spec->encode.gop, 0);
    assert_int_equal(spec->encode.noptions, 0);
    assert_int_equal(spec->audio, RF_AUDIO_COPY);
    assert_int_equal(spec->provenance.nsubjects, 0);
    assert_true(spec->provenance.watermark);
    rf_job_spec_destroy(&spec);
    assert_null(spec);
    rf_job_spec_destroy(&spec); /* idempotent */
}

static void s_assert_hex(const uint8_t *digest, const char *hex)
{
    char got[2 * RF_SUBJECT_DIGEST_LEN + 1];
    for (int i = 0; i < RF_SUBJECT_DIGEST_LEN; i++)
        snprintf(got + 2 * i, 3, "%02x", digest[i]);
    assert_string_equal(got, hex);
}

/* Who is depicted decides the label's default; fictional subjects are no real people. */
static void test_consent_defaults(void **state)
{
    static const struct {
        const char *provenance;
        bool real, label;
    } cases[] = {
        {"", false, false},
        {"provenance: {depicts: no-real-people}\n", false, false},
        {"provenance: {label: true}\n", false, true},
        {"provenance: {subjects: [{name: Bob, basis: fictional}]}\n", false, false},
        {"provenance: {subjects: [{name: Ada, basis: public-domain-historical}]}\n", true, true},
        {"provenance: {depicts: real-people, subjects: [{name: K, basis: licensed, release: L-7}]}\n",
         true, true},
    };
    (void)state;
    for (size_t i = 0; i < S_COUNT(cases); i++) {
        char yaml[512];
        rf_job_spec_t *spec = NULL;
        rf_err_t err = {0};
        snprintf(yaml, sizeof(yaml), "%s%s", S_HEAD, cases[i].provenance);
        assert_int_equal(rf_job_spec_load_string(yaml, strlen(yaml), "job.yaml", S_BASE, &spec, &err), 0);
        assert_int_equal(spec->provenance.depicts_real_people, cases[i].real);
        assert_int_equal(spec->provenance.label, cases[i].label);
        assert_true(spec->provenance.watermark);
        rf_job_spec_destroy(&spec);
    }
}

static void test_full_spec(void **state)
{
    const char *yaml =
        "version: 1\n"
        "name: \"scene 12\"\n"
        "input: /media/plates/../plates/scene12.mov\n"
        "output: renders//scene12.mp4\n"
        "seed: 18446744073709551615\n"
        "priority: 0\n"
        "chunking: {split: keyframe, target_seconds: 2.5, max_seconds: 2.5,\n"
        "           context_frames: 8, seam_overlap: 4, scene_threshold: 0}\n"
        "pipeline:\n"
        "  - {pass: deflicker, strength: 0.25}\n"
        "  - {pass: deflicker, role: refine, window: 120, strength: 1}\n"
        "encode:\n"
        "  codec: libsvtav1\n"
        "  crf: 63\n"
        "  preset: '8'\n"
        "  pix_fmt: yuv420p10le\n"
        "  bitrate: 2.5M\n"
        "  gop: 10000\n"
        "  options: {tune: 0, x264-params: 'keyint=10:min-keyint=1', fast_decode: 1}\n"
        "audio: none\n"
        "provenance:\n"
        "  subjects:\n"
        "    - {name: Ada Lovelace, basis: public-domain-historical}\n"
        "    - {name: 'J. Doe', basis: consent, release: releases/jdoe.pdf}\n"
        "  watermark: true\n";
    rf_job_spec_t *spec = s_load_ok(yaml);

    (void)state;
    assert_string_equal(spec->name, "scene 12");
    assert_string_equal(spec->input, "/media/plates/scene12.mov");
    assert_string_equal(spec->output, S_BASE "/renders/scene12.mp4");
    assert_true(spec->seed == UINT64_MAX);
    assert_int_equal(spec->priority, 0);
    assert_int_equal(spec->chunking.split, RF_SPLIT_KEYFRAME);
    assert_true(spec->chunking.target_seconds == 2.5);
    assert_true(spec->chunking.max_seconds == 2.5);
    assert_int_equal(spec->chunking.context_frames, 8);
    assert_int_equal(spec->chunking.seam_overlap, 4);
    assert_true(spec->chunking.scene_threshold == 0);

    assert_int_equal(spec->npasses, 2);
    assert_string_equal(spec->pipeline[0].name, "deflicker");
    assert_string_equal(spec->pipeline[0].role, "refine"); /* the pass's first role */
    assert_int_equal(spec->pipeline[0].nparams, 2);        /* every parameter, defaults filled */
    assert_string_equal(rf_pass_spec_param(&spec->pipeline[0], "strength"), "0.25");
    assert_string_equal(rf_pass_spec_param(&spec->pipeline[0], "window"), "8");
    assert_string_equal(rf_pass_spec_param(&spec->pipeline[1], "strength"), "1");
    assert_string_equal(rf_pass_spec_param(&spec->pipeline[1], "window"), "120");
    assert_null(rf_pass_spec_param(&spec->pipeline[1], "radius"));
    assert_null(rf_pass_spec_param(NULL, "window"));

    assert_string_equal(spec->encode.codec, "libsvtav1");
    assert_int_equal(spec->encode.crf, 63);
    assert_string_equal(spec->encode.preset, "8");
    assert_string_equal(spec->encode.pix_fmt, "yuv420p10le");
    assert_true(spec->encode.bitrate == 2500000);
    assert_int_equal(spec->encode.gop, 10000);
    assert_int_equal(spec->encode.noptions, 3);
    assert_string_equal(spec->encode.options[0].key, "tune");
    assert_string_equal(spec->encode.options[0].value, "0");
    assert_string_equal(spec->encode.options[1].key, "x264-params");
    assert_string_equal(spec->encode.options[1].value, "keyint=10:min-keyint=1");
    assert_string_equal(spec->encode.options[2].key, "fast_decode");
    assert_int_equal(spec->audio, RF_AUDIO_NONE);

    assert_int_equal(spec->provenance.nsubjects, 2);
    assert_string_equal(spec->provenance.subjects[0].name, "Ada Lovelace");
    assert_string_equal(spec->provenance.subjects[0].basis, "public-domain-historical");
    assert_string_equal(spec->provenance.subjects[0].release, "");
    assert_string_equal(spec->provenance.subjects[1].name, "J. Doe");
    assert_string_equal(spec->provenance.subjects[1].basis, "consent");
    assert_string_equal(spec->provenance.subjects[1].release, "releases/jdoe.pdf");
    assert_true(spec->provenance.watermark);
    assert_int_equal(spec->provenance.subjects[0].basis_kind, RF_BASIS_PUBLIC_DOMAIN_HISTORICAL);
    assert_int_equal(spec->provenance.subjects[1].basis_kind, RF_BASIS_CONSENT);
    /* SHA-256("reelfarm subject v1\0" name "\0" basis "\0" release), from Python's hashlib */
    s_assert_hex(spec->provenance.subjects[0].digest,
                 "469785af98b3c933adc70a48079c1645cc99c9fc86741c34031d13bfb2e65e98");
    s_assert_hex(spec->provenance.subjects[1].digest,
                 "3455e52b8cbbc2e927490f5414e86d88b59485f017a4ba89a5848893462c921e");
    /* real subjects: the job depicts real people, and the visible label is on */
    assert_true(spec->provenance.depicts_real_people);
    assert_true(spec->provenance.label);
    rf_job_spec_destroy(&spec);
}

static void test_encode_variants(void **state)
{
    static const struct {
        const char *encode;
        const char *codec;
        int crf;
        const char *preset;
        int64_t bitrate;
    } cases[] = {
        {"{codec: libx265}", "libx265", -1, NULL, 0}, /* the encoder's own defaults */
        {"{codec: libx264, crf: 0}", "libx264", 0, NULL, 0},
        {"{codec: libx265, crf: 51, preset: slow}", "libx265", 51, "slow", 0},
        {"{codec: ffv1}", "ffv1", -1, NULL, 0},
        {"{codec: prores_ks, bitrate: 800k}", "prores_ks", -1, NULL, 800000},
        {"{codec: h264_nvenc, preset: p4, bitrate: 8000000}", "h264_nvenc", -1, "p4", 8000000},
        {"{codec: hevc_nvenc, bitrate: \"1G\"}", "hevc_nvenc", -1, NULL, 1000000000},
    };
    char yaml[512];

    (void)state;
    for (size_t i = 0; i < S_COUNT(cases); i++) {
        snprintf(yaml, sizeof(yaml), "%sencode: %s\n", S_HEAD, cases[i].encode);
        rf_job_spec_t *spec = s_load_ok(yaml);
        assert_string_equal(spec->encode.codec, cases[i].codec);
        assert_int_equal(spec->encode.crf, cases[i].crf);
        if (cases[i].preset)
            assert_string_equal(spec->encode.preset, cases[i].preset);
        else
            assert_null(spec->encode.preset);
        assert_true(spec->encode.bitrate == cases[i].bitrate);
        rf_job_spec_destroy(&spec);
    }
}

static void test_empty_pipeline_and_sections(void **state)
{
    rf_job_spec_t *spec =
        s_load_ok(S_HEAD "pipeline: []\nchunking: {}\nprovenance: {subjects: []}\n");

    (void)state;
    assert_int_equal(spec->npasses, 0);
    assert_int_equal(spec->provenance.nsubjects, 0);
    assert_true(spec->chunking.target_seconds == 6);
    rf_job_spec_destroy(&spec);
}

/* A plugin pass keeps its keys as written, role refine by default; color-match gets no
 * scene_ref from the loader (the coordinator adds it); scale takes one side. */
static void test_plugin_and_new_passes(void **state)
{
    (void)state;
    rf_job_spec_t *spec = s_load_ok(S_HEAD "pipeline:\n"
                                           "  - {pass: my-invert, plugin: true, gain: 0.5, "
                                           "mode: 'fast', empty: ''}\n"
                                           "  - {pass: color-match, reference: ' 0.6,0,0, 0.2,0.01,0.02'}\n"
                                           "  - {pass: scale, width: 1280}\n");
    assert_int_equal(spec->npasses, 3);
    const rf_pass_spec_t *p = &spec->pipeline[0];
    assert_string_equal(p->name, "my-invert");
    assert_string_equal(p->role, "refine");
    assert_int_equal(p->nparams, 3);
    assert_string_equal(rf_pass_spec_param(p, "gain"), "0.5");
    assert_string_equal(rf_pass_spec_param(p, "mode"), "fast");
    assert_string_equal(rf_pass_spec_param(p, "empty"), "");
    assert_null(rf_pass_spec_param(p, "plugin"));
    assert_null(rf_pass_spec_param(p, "pass"));
    p = &spec->pipeline[1];
    assert_int_equal(p->nparams, 3);
    assert_string_equal(rf_pass_spec_param(p, "reference"), " 0.6,0,0, 0.2,0.01,0.02");
    assert_string_equal(rf_pass_spec_param(p, "strength"), "1");
    assert_null(rf_pass_spec_param(p, "scene_ref"));
    p = &spec->pipeline[2];
    assert_string_equal(rf_pass_spec_param(p, "width"), "1280");
    assert_string_equal(rf_pass_spec_param(p, "height"), "0");
    assert_string_equal(rf_pass_spec_param(p, "filter"), "lanczos");
    rf_job_spec_destroy(&spec);
}

/* Every pass in the catalogue loads with its defaults: guards rows added later. */
static void test_catalog(void **state)
{
    size_t n = 0;
    const rf_pass_def_t *cat = rf_pass_catalog(&n);
    char yaml[512];

    (void)state;
    assert_true(n >= 1);
    const rf_pass_def_t *deflicker = rf_pass_find("deflicker");
    assert_non_null(deflicker);
    assert_true(deflicker >= cat && deflicker < cat + n);
    assert_null(rf_pass_find("emboss"));
    assert_null(rf_pass_find(NULL));
    assert_true(deflicker->temporal);
    assert_string_equal(deflicker->roles, "refine");
    for (size_t i = 0; i < n; i++) {
        bool required = false;
        size_t user_params = 0;
        assert_non_null(cat[i].doc);
        for (size_t j = 0; j < cat[i].nparams; j++) {
            assert_non_null(cat[i].params[j].doc);
            if (cat[i].params[j].internal)
                continue; /* never from a spec, so never required there */
            required |= cat[i].params[j].def == NULL;
            user_params++;
        }
        /* A pass the coordinator adds (watermark, label) is refused in a spec, whatever it says. */
        if (cat[i].automatic) {
            rf_job_spec_t *spec = NULL;
            rf_err_t err = {0};
            char want[256];
            snprintf(yaml, sizeof(yaml), "%spipeline: [{pass: %s}]\n", S_HEAD, cat[i].name);
            assert_int_equal(rf_job_spec_load_string(yaml, strlen(yaml), "job.yaml", S_BASE, &spec, &err),
                             RF_ECONFIG);
            snprintf(want, sizeof(want),
                     "job.yaml:4: key 'pipeline[0].pass': pass '%s' is added by the coordinator to "
                     "every job that needs it (provenance); remove it from the pipeline",
                     cat[i].name);
            assert_string_equal(err.msg, want);
            continue;
        }
        /* A pass with a required parameter, or a check its defaults fail (scale needs a size),
         * has its own tests. */
        if (required || !strcmp(cat[i].name, "scale"))
            continue;
        snprintf(yaml, sizeof(yaml), "%spipeline: [{pass: %s}]\n", S_HEAD, cat[i].name);
        rf_job_spec_t *spec = s_load_ok(yaml);
        assert_int_equal(spec->pipeline[0].nparams, user_params);
        rf_job_spec_destroy(&spec);
    }
}

/* ---- files ---------------------------------------------------------------------------------- */

static int s_setup(void **state)
{
    (void)state;
    return s_tmp_make("/tmp/rf-jobspec-XXXXXX");
}

static void test_file_relative_paths(void **state)
{
    char dir[300], path[400], cwd[4096], *real;
    const char *yaml = "version: 1\ninput: plates/in.mov\noutput: ../out.mp4\n";
    rf_job_spec_t *spec = NULL;
    rf_err_t err = {0};

    (void)state;
    snprintf(dir, sizeof(dir), "%s/sub", s_tmp);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/job.yaml", dir);
    s_write(path, yaml, strlen(yaml));
    real = realpath(dir, NULL);
    assert_non_null(real);

    assert_int_equal(rf_job_spec_load_file(path, &spec, &err), 0);
    assert_string_equal(spec->source, path);
    assert_string_equal(spec->base_dir, real);
    snprintf(path, sizeof(path), "%s/plates/in.mov", real);
    assert_string_equal(spec->input, path);
    rf_job_spec_destroy(&spec);

    /* A bare file name resolves against the current folder. */
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(rf_job_spec_load_file("job.yaml", &spec, &err), 0);
    assert_string_equal(spec->base_dir, real);
    assert_string_equal(spec->source, "job.yaml");
    rf_job_spec_destroy(&spec);
    assert_int_equal(chdir(cwd), 0);
    free(real);
}

static void test_file_errors(void **state)
{
    char path[400];
    rf_job_spec_t *spec = NULL;
    rf_err_t err = {0};
    char want[600];
    size_t big = RF_SPEC_MAX_BYTES + 1;
    char *text;

    (void)state;
    snprintf(path, sizeof(path), "%s/missing.yaml", s_tmp);
    assert_int_equal(rf_job_spec_load_file(path, &spec, &err), RF_ENOENT);
    snprintf(want, sizeof(want), "'%s': no such file", path);
    assert_string_equal(err.msg, want);
    assert_null(spec);

    snprintf(path, sizeof(path), "%s/big.yaml", s_tmp);
    text = malloc(big);
    assert_non_null(text);
    memset(text, '#', big);
    s_write(path, text, big);
    free(text);
    assert_int_equal(rf_job_spec_load_file(path, &spec, &err), RF_ETOOBIG);
    assert_null(spec);
    assert_non_null(strstr(err.msg, "over the limit"));

    /* Errors in a file name the file as given. */
    snprintf(path, sizeof(path), "%s/bad.yaml", s_tmp);
    s_write(path, "version: 1\ninput: a\noutput: b\nencode: {codec: libx264, crf: high}\n", 66);
    assert_int_equal(rf_job_spec_load_file(path, &spec, &err), RF_ECONFIG);
    snprintf(want, sizeof(want), "%s:4: key 'encode.crf': expected an integer in 0..51, got 'high'",
             path);
    assert_string_equal(err.msg, want);

    /* A folder is not a spec. */
    assert_int_equal(rf_job_spec_load_file(s_tmp, &spec, &err), RF_EIO);
}

/* Input and output that are the same file through a symlink. */
static void test_same_file_via_link(void **state)
{
    char in[400], link[400], yaml[1024];
    rf_job_spec_t *spec = NULL;
    rf_err_t err = {0};

    (void)state;
    snprintf(in, sizeof(in), "%s/in.mov", s_tmp);
    snprintf(link, sizeof(link), "%s/link.mov", s_tmp);
    s_write(in, "x", 1);
    assert_int_equal(symlink(in, link), 0);
    snprintf(yaml, sizeof(yaml), "version: 1\ninput: %s\noutput: %s\n", in, link);
    assert_int_equal(rf_job_spec_load_string(yaml, strlen(yaml), "job.yaml", S_BASE, &spec, &err),
                     RF_ECONFIG);
    assert_non_null(strstr(err.msg, "job.yaml:3: key 'output': is the same file as input"));
}

static void test_example_loads(void **state)
{
    rf_job_spec_t *spec = NULL;
    rf_err_t err = {0};

    (void)state;
    s_assert_loaded(rf_job_spec_load_file(s_example("job.yaml"), &spec, &err), &err);
    assert_string_equal(spec->name, "scene-12");
    assert_int_equal(spec->npasses, 1);
    assert_int_equal(spec->provenance.nsubjects, 1);
    rf_job_spec_destroy(&spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_too_many_passes),
        cmocka_unit_test(test_too_many_options_and_subjects),
        cmocka_unit_test(test_string_too_big),
        cmocka_unit_test(test_relative_base_dir_refused),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_requirements),
        cmocka_unit_test(test_critic),
        cmocka_unit_test(test_full_spec),
        cmocka_unit_test(test_consent_defaults),
        cmocka_unit_test(test_encode_variants),
        cmocka_unit_test(test_empty_pipeline_and_sections),
        cmocka_unit_test(test_catalog),
        cmocka_unit_test(test_plugin_and_new_passes),
        cmocka_unit_test(test_file_relative_paths),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_same_file_via_link),
        cmocka_unit_test(test_example_loads),
    };
    return cmocka_run_group_tests(tests, s_setup, s_tmp_teardown);
}
