import * as assert from 'node:assert/strict';
import * as path from 'path';
import { chooseInterpreter, interpreterFromPythonExtension, PythonExtensionApi } from '../common/python';

describe('interpreter choice', () => {
    it('the sleepyCoder.python setting wins over the Python extension', () => {
        assert.deepEqual(chooseInterpreter('/opt/sc/bin/python', ['/venv/bin/python']), {
            command: ['/opt/sc/bin/python'],
            source: 'setting',
        });
    });

    it('without a setting, the interpreter selected in the Python extension is used', () => {
        assert.deepEqual(chooseInterpreter('', ['/venv/bin/python']), {
            command: ['/venv/bin/python'],
            source: 'python-extension',
        });
    });

    it('with neither, python3 from PATH is used', () => {
        assert.deepEqual(chooseInterpreter('', undefined), { command: ['python3'], source: 'default' });
        assert.deepEqual(chooseInterpreter('   ', ['', ' ']), { command: ['python3'], source: 'default' });
    });

    it('the setting may use ${workspaceFolder} and ~', () => {
        const context = { workspaceFolder: '/work/crate', home: '/home/me' };
        assert.deepEqual(chooseInterpreter('${workspaceFolder}/.venv/bin/python', undefined, context).command, [
            '/work/crate/.venv/bin/python',
        ]);
        assert.deepEqual(chooseInterpreter('~/venvs/sc/bin/python', undefined, context).command, [
            path.join('/home/me', 'venvs/sc/bin/python'),
        ]);
    });

    it('a multi-part command from the Python extension (conda run ...) is kept whole', () => {
        const execCommand = ['conda', 'run', '-n', 'sc', 'python'];
        assert.deepEqual(chooseInterpreter('', execCommand).command, execCommand);
    });
});

describe('asking the Python extension', () => {
    it('resolves the active environment to its executable', async () => {
        const api: PythonExtensionApi = {
            ready: Promise.resolve(),
            environments: {
                getActiveEnvironmentPath: () => ({ id: 'venv', path: '/work/.venv' }),
                resolveEnvironment: (env) =>
                    Promise.resolve(
                        typeof env !== 'string' && env.path === '/work/.venv'
                            ? { executable: { uri: { fsPath: '/work/.venv/bin/python' } } }
                            : undefined,
                    ),
            },
        };
        assert.deepEqual(await interpreterFromPythonExtension(api), ['/work/.venv/bin/python']);
    });

    it('falls back to the legacy execution details when environments cannot be resolved', async () => {
        const api: PythonExtensionApi = {
            environments: {
                getActiveEnvironmentPath: () => ({ path: '/envs/broken' }),
                resolveEnvironment: () => Promise.resolve(undefined),
            },
            settings: { getExecutionDetails: () => ({ execCommand: ['/usr/bin/python3.12'] }) },
        };
        assert.deepEqual(await interpreterFromPythonExtension(api), ['/usr/bin/python3.12']);
    });

    it('uses the older `environment` API spelling without resolveEnvironment as is', async () => {
        const api: PythonExtensionApi = { environment: { getActiveEnvironmentPath: () => ({ path: '/x/python' }) } };
        assert.deepEqual(await interpreterFromPythonExtension(api), ['/x/python']);
    });

    it('a missing or failing Python extension means no choice, not an error', async () => {
        assert.equal(await interpreterFromPythonExtension(undefined), undefined);
        const throwing: PythonExtensionApi = {
            environments: {
                getActiveEnvironmentPath: () => {
                    throw new Error('not ready');
                },
            },
        };
        assert.equal(await interpreterFromPythonExtension(throwing), undefined);
        assert.equal(await interpreterFromPythonExtension({ settings: { getExecutionDetails: () => ({ execCommand: [] }) } }), undefined);
    });
});
