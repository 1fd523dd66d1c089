// Which code a benchmark measured: the commit at its start (others may commit while a long run
// goes on) and whether the measured sources differed from it.
import { execFileSync } from 'node:child_process';
import { PROJECT_ROOT } from '../src/runtime/project.js';

const git = (...args: string[]) => {
  try {
    return execFileSync('git', args, { cwd: PROJECT_ROOT, encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
};

export function codeUnderTest(): { commit: string; dirty: boolean } {
  return {
    commit: git('rev-parse', 'HEAD'),
    dirty: git('status', '--porcelain', '--', 'src', 'processors', 'config', 'bench/*.ts') !== '',
  };
}
