import * as assert from 'node:assert/strict';
import { buildServerLaunch, describeLaunch } from '../common/launch';

describe('server command line', () => {
    it('runs the server module with the chosen interpreter in the project folder', () => {
        const launch = buildServerLaunch(['/venv/bin/python'], 'lsp_server', '/work/crate', { PATH: '/usr/bin' });
        assert.equal(launch.command, '/venv/bin/python');
        assert.deepEqual(launch.args, ['-m', 'lsp_server']);
        assert.equal(launch.options.cwd, '/work/crate');
    });

    it('keeps interpreter arguments before -m', () => {
        const launch = buildServerLaunch(['conda', 'run', '-n', 'sc', 'python'], 'lsp_server', '/w', {});
        assert.equal(launch.command, 'conda');
        assert.deepEqual(launch.args, ['run', '-n', 'sc', 'python', '-m', 'lsp_server']);
    });

    it('inherits the editor environment and adds unbuffered UTF-8 Python I/O', () => {
        const base = { PATH: '/usr/bin', SLEEPY_CODER_HOME: '/tmp/sc', PYTHONUNBUFFERED: '0' };
        const launch = buildServerLaunch(['python3'], 'lsp_server', '/w', base);
        assert.equal(launch.options.env.PATH, '/usr/bin');
        assert.equal(launch.options.env.SLEEPY_CODER_HOME, '/tmp/sc');
        assert.equal(launch.options.env.PYTHONUNBUFFERED, '1');
        assert.equal(launch.options.env.PYTHONUTF8, '1');
        assert.equal(base.PYTHONUNBUFFERED, '0', 'the caller environment is not modified');
    });

    it('refuses an empty interpreter with a clear message', () => {
        assert.throws(() => buildServerLaunch([], 'lsp_server', '/w', {}), /No Python interpreter/);
    });

    it('describes the command line so it can be pasted into a shell', () => {
        const launch = buildServerLaunch(['/My Envs/python'], 'lsp_server', '/w', {});
        assert.equal(describeLaunch(launch), '"/My Envs/python" -m lsp_server');
    });
});
