/* redact.h - the command line as llmwrap lets it leave the process.
 *
 * The wrapped command's argv is recorded in the ledger (OpenRunRequest)
 * and printed into a GitHub step summary. A command line often carries a
 * credential (curl -H 'Authorization: Bearer sk-...', --api-key KEY,
 * OPENAI_API_KEY=... as an env(1) argument), and no credential may reach
 * the disk: llmwrap sends and prints only the redacted copy. Redaction is
 * on purpose generous: a harmless value taken for a secret costs a less
 * readable log, a missed secret costs a leaked key.
 *
 * What is replaced by LW_REDACTED:
 *   - the value of an auth header named in an argument ("Authorization:",
 *     "Proxy-Authorization:", "X-Api-Key:", "X-Goog-Api-Key:", "Api-Key:",
 *     in any case, as in -H 'Authorization: Bearer X', where the scheme
 *     word is kept) or, when the argument ends at the colon, the next one;
 *   - the value of a long option whose name says it holds a secret (the
 *     words key, token and auth; secret, password, passwd and bearer
 *     anywhere: --api-key, --auth-token=X, --oauth2-bearer, not
 *     --max-tokens or --keyboard), with two dashes or one (-api-key,
 *     -Dapi.key=X), as --opt=VALUE or as the next argument;
 *   - the value of an environment assignment with such a name
 *     (OPENAI_API_KEY=X), as the whole argument or inside one: in a shell
 *     command ("cd x && OPENAI_API_KEY=X python3 a.py", export K="X"),
 *     after '=' (--env=OPENAI_API_KEY=X), '.' or ',' (--set
 *     n=1,secrets.apiKey=X) or glued to a short option (-eOPENAI_API_KEY=X);
 *   - the password of curl's -u/--user and -U/--proxy-user (user:PW,
 *     glued, after '=' or as the next argument);
 *   - the password in a URL's user info (https://user:PW@host);
 *   - the value of a query or form parameter, and the string value of a
 *     JSON member, whose name says it holds a secret (?key=X&...,
 *     &access_token=X, {"api_key": "X"});
 *   - anything shaped like a provider key wherever it appears (sk-...,
 *     sk-ant-..., sk-or-..., AIza..., xai-..., gsk_..., pplx-..., fw_...).
 *
 * The redacted copy is then cut to LW_REDACT_MAX_BYTES: a command line
 * can be as long as the kernel allows (megabytes of arguments, from xargs
 * or a generated file list), and the ledger keeps one per run; one longer
 * than an IPC frame could not even be recorded, and llmwrap refused to run
 * the program at all.
 *
 * Pure functions, no I/O. Thread-safety: reentrant.
 */
#pragma once

#include <glib.h>

#define LW_REDACTED "[redacted]"

/* The most of a command line recorded: its arguments' bytes, each counted
 * with its terminating NUL. Far below an IPC frame (LW_IPC_MAX_FRAME),
 * with room for the run's other fields. */
#define LW_REDACT_MAX_BYTES (64 * 1024)

/* A copy of `argv` (NULL-terminated; NULL gives an empty vector) with the
 * secrets above replaced. Past LW_REDACT_MAX_BYTES, the arguments that
 * fit are kept whole, the first that does not is cut to the room left
 * (at a UTF-8 character boundary), and one last argument says how many
 * bytes were left out: "[N more bytes not recorded]". Transfer full
 * (g_strfreev). */
char **lw_redact_argv(char *const *argv);
