// Fenced blocks of the project's Markdown, for the tests that keep the docs true
// (test/integration/docs-configs.test.ts, test/integration/docs-clients.test.ts).
//
// Conventions a doc edit follows, so that the new text is tested without touching a test:
// - every fence carries a language tag: `yaml` for a mesh.yaml, `sh` / `js` / `python` /
//   `java` / `go` for commands and code, `text` for anything that is neither (diagrams, output);
// - a `yaml` block is a complete mesh.yaml, validated by `dreammesh validate` and the exported
//   JSON Schema; a shell heredoc `cat > NAME.yaml <<'EOF'` inside a `sh` block is one too;
// - an HTML comment on the line right before a fence says more about it:
//   `<!-- file: NAME -->`     the block is the file NAME (a registry file, a program); it is
//                             written next to the page's configs and programs before they run;
//   `<!-- assumes: A B -->`   the config names files the page does not show (certificates);
//                             the test creates them empty so every other check still runs;
//   `<!-- fragment -->`       intentionally partial; not validated on its own;
//   `<!-- not run -->`        a command the test cannot run verbatim (it says why nearby);
//   `<!-- tcp only -->`       a client that cannot use a unix: outbound and says so clearly.
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface Block {
  /** Page path relative to the repository, and the 1-based line of the opening fence. */
  readonly page: string;
  readonly line: number;
  readonly lang: string;
  readonly body: string;
  /** The marker comment right before the fence: name and argument, e.g. ['file', 'services.yaml']. */
  readonly marker: { readonly name: string; readonly arg: string } | undefined;
}

/** README.md and every docs/*.md. */
export function docPages(): string[] {
  const docs = readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`);
  return ['README.md', ...docs];
}

export function blocks(page: string): Block[] {
  const lines = readFileSync(join(ROOT, page), 'utf8').split('\n');
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,})(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[2]!;
    const lang = open[3]!.trim();
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i]!.trim().startsWith(fence); i++) body.push(lines[i]!.slice(open[1]!.length));
    const m = start > 0 ? /^<!--\s*([a-z -]+?)(?::\s*(.*?))?\s*-->$/.exec(lines[start - 1]!.trim()) : null;
    out.push({ page, line: start + 1, lang, body: body.join('\n') + '\n', marker: m ? { name: m[1]!, arg: m[2] ?? '' } : undefined });
  }
  return out;
}

/** Heredocs that write a YAML file inside a shell block: [file name, content]. */
export function yamlHeredocs(b: Block): [string, string][] {
  const out: [string, string][] = [];
  for (const m of b.body.matchAll(/cat\s*>\s*(\S+\.ya?ml)\s*<<\s*'?(\w+)'?\n([\s\S]*?)\n\2\n/g)) out.push([m[1]!, m[3]! + '\n']);
  return out;
}
