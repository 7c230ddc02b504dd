import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { EXTENSION_COMMANDS, EXTENSION_ROOT_DIR } from '../common/constants';
import { contributedDefaults, SERVER_SETTING_KEYS, toInitializationOptions } from '../common/settings';
import { loadContributedSettings, loadServerInfo, ManifestError } from '../common/setup';

const manifest = JSON.parse(fs.readFileSync(path.join(EXTENSION_ROOT_DIR, 'package.json'), 'utf8')) as {
    activationEvents: string[];
    main: string;
    contributes: { commands: { command: string; title: string }[] };
};

/** The defaults of `class Settings` in learner/config.py, for the fields the editor exposes. */
function pythonDefaults(source: string): Map<string, unknown> {
    const constants = new Map<string, unknown>();
    for (const match of source.matchAll(/^([A-Z_]+) = "([^"]*)"$/gm)) {
        constants.set(match[1], match[2]);
    }
    const body = source.slice(source.indexOf('class Settings'));
    const defaults = new Map<string, unknown>();
    for (const match of body.matchAll(/^ {4}(\w+): [^=\n]+= (.+)$/gm)) {
        const raw = match[2].trim();
        let value: unknown;
        if (raw === 'True' || raw === 'False') {
            value = raw === 'True';
        } else if (/^-?\d+(\.\d+)?$/.test(raw)) {
            value = Number(raw);
        } else if (/^"[^"]*"$/.test(raw)) {
            value = raw.slice(1, -1);
        } else if (raw === 'field(default_factory=list)') {
            value = [];
        } else if (constants.has(raw)) {
            value = constants.get(raw);
        } else {
            continue;
        }
        defaults.set(match[1], value);
    }
    return defaults;
}

function snake(name: string): string {
    return name.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`);
}

describe('package.json', () => {
    it('declares the server identity once, as serverInfo', () => {
        assert.deepEqual(loadServerInfo(), { name: 'Sleepy Coder', module: 'lsp_server' });
    });

    it('a manifest without serverInfo is a clear error', () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-manifest-'));
        fs.writeFileSync(path.join(dir, 'package.json'), '{"name": "x"}');
        assert.throws(() => loadServerInfo(dir), ManifestError);
        assert.throws(() => loadServerInfo(path.join(dir, 'missing')), /Cannot read/);
    });

    it('activates only for Rust workspaces', () => {
        assert.deepEqual([...manifest.activationEvents].sort(), ['onLanguage:rust', 'workspaceContains:**/Cargo.toml']);
    });

    it('contributes exactly the commands the extension registers, none clashing with server commands', () => {
        const contributed = manifest.contributes.commands.map((c) => c.command).sort();
        assert.deepEqual(contributed, Object.values(EXTENSION_COMMANDS).sort());
        assert.ok(contributed.every((id) => !id.startsWith('sleepy-coder.')));
    });

    it('contributes a setting, with a valid default, for every server setting', () => {
        const contributed = loadContributedSettings();
        for (const key of SERVER_SETTING_KEYS) {
            assert.ok(contributed.has(key), key);
        }
        assert.doesNotThrow(() => contributedDefaults());
    });

    it('setting defaults, as the server receives them without rust-analyzer, equal learner/config.py', function () {
        const configPy = path.join(EXTENSION_ROOT_DIR, '..', 'learner', 'config.py');
        if (!fs.existsSync(configPy)) {
            this.skip(); // the extension folder was copied out of the repository
        }
        const server = pythonDefaults(fs.readFileSync(configPy, 'utf8'));
        // Translated, because publishDiagnostics "auto" is an editor choice; the server sees a boolean.
        const ours = toInitializationOptions(contributedDefaults(), { rustAnalyzerInstalled: false });
        for (const key of SERVER_SETTING_KEYS) {
            assert.ok(server.has(snake(key)), `learner/config.py has no default for ${snake(key)}`);
            assert.deepEqual(ours[key], server.get(snake(key)), key);
        }
    });

    it('points main at the compiled entry point', () => {
        assert.equal(manifest.main, './out/extension.js');
        assert.ok(fs.existsSync(path.join(EXTENSION_ROOT_DIR, manifest.main)));
    });
});
