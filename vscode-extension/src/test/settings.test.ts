import * as assert from 'node:assert/strict';
import {
    ConfigReader,
    contributedDefaults,
    ExtensionSettings,
    reactionToChange,
    readSettings,
    resolvePublishDiagnostics,
    SERVER_SETTING_KEYS,
    toDidChangeConfigurationParams,
    toInitializationOptions,
} from '../common/settings';

/** A configuration holding exactly the given values, like a user settings.json. */
function config(values: Record<string, unknown>): ConfigReader {
    return {
        get<T>(key: string): T | undefined {
            return values[key] as T | undefined;
        },
    };
}

/** A VS Code without rust-analyzer, and one with it. */
const ALONE = { rustAnalyzerInstalled: false };
const WITH_RUST_ANALYZER = { rustAnalyzerInstalled: true };

describe('settings', () => {
    const defaults = contributedDefaults();

    it('unset settings take the defaults declared in package.json', () => {
        const { settings, problems } = readSettings(config({}), defaults);
        assert.deepEqual(problems, []);
        assert.deepEqual(settings, defaults);
        assert.equal(settings.model, 'embedded:qwen2.5-coder-1.5b-instruct');
        assert.equal(settings.maxNewTokens, 384);
        assert.equal(settings.python, '');
        assert.equal(settings.publishDiagnostics, 'auto');
        assert.equal(settings.editWindowS, 600);
    });

    it('user values are passed to the server under the server names, without the client-only python', () => {
        const { settings } = readSettings(
            config({
                python: '/venv/bin/python',
                model: 'Qwen/Qwen2.5-Coder-0.5B-Instruct',
                device: 'cuda',
                backend: 'openai:http://gpu-box:8000/v1',
                backendModel: 'qwen',
                backendTimeoutS: 20,
                publishAdapters: true,
                maxNewTokens: 128,
                attempts: 1,
                candidates: 4,
                backgroundFixes: false,
                modelEnabled: false,
                publishDiagnostics: 'off',
                learningEnabled: false,
                retentionDays: 0,
                excludeGlobs: ['secret/**'],
                editWindowS: 30.5,
            }),
            defaults,
        );
        assert.deepEqual(toInitializationOptions(settings, ALONE), {
            model: 'Qwen/Qwen2.5-Coder-0.5B-Instruct',
            device: 'cuda',
            backend: 'openai:http://gpu-box:8000/v1',
            backendModel: 'qwen',
            backendTimeoutS: 20,
            publishAdapters: true,
            maxNewTokens: 128,
            attempts: 1,
            candidates: 4,
            backgroundFixes: false,
            modelEnabled: false,
            publishDiagnostics: false,
            learningEnabled: false,
            retentionDays: 0,
            excludeGlobs: ['secret/**'],
            editWindowS: 30.5,
        });
    });

    it('publishDiagnostics "auto" is off with rust-analyzer installed (one set of squiggles), else on', () => {
        assert.equal(resolvePublishDiagnostics('auto', WITH_RUST_ANALYZER), false);
        assert.equal(resolvePublishDiagnostics('auto', ALONE), true);
        for (const environment of [ALONE, WITH_RUST_ANALYZER]) {
            assert.equal(resolvePublishDiagnostics('on', environment), true);
            assert.equal(resolvePublishDiagnostics('off', environment), false);
        }
        // The server receives the boolean, never the mode.
        const { settings } = readSettings(config({}), defaults);
        assert.equal(toInitializationOptions(settings, WITH_RUST_ANALYZER).publishDiagnostics, false);
        assert.equal(toInitializationOptions(settings, ALONE).publishDiagnostics, true);
    });

    it('publishDiagnostics written as a boolean (its old type) still means on / off', () => {
        const read = (value: unknown) => readSettings(config({ publishDiagnostics: value }), defaults);
        assert.equal(read(true).settings.publishDiagnostics, 'on');
        assert.equal(read(false).settings.publishDiagnostics, 'off');
        assert.deepEqual(read(false).problems, []);
        const wrong = read('sometimes');
        assert.equal(wrong.settings.publishDiagnostics, 'auto');
        assert.match(wrong.problems.join('\n'), /sleepyCoder\.publishDiagnostics must be "auto", "on" or "off", not "sometimes"/);
    });

    it('editWindowS takes any positive number of seconds', () => {
        const read = (value: unknown) => readSettings(config({ editWindowS: value }), defaults);
        assert.equal(read(0.5).settings.editWindowS, 0.5);
        assert.equal(read(3600).settings.editWindowS, 3600);
        for (const bad of [0, -5, '60', Number.POSITIVE_INFINITY]) {
            const { settings, problems } = read(bad);
            assert.equal(settings.editWindowS, 600, String(bad));
            assert.match(problems[0], /sleepyCoder\.editWindowS must be a number greater than 0/);
        }
    });

    it('invalid values fall back to the default and are reported by name', () => {
        const { settings, problems } = readSettings(
            config({ attempts: 0, maxNewTokens: '500', excludeGlobs: ['ok', 3], modelEnabled: 'yes' }),
            defaults,
        );
        assert.equal(settings.attempts, 3);
        assert.equal(settings.maxNewTokens, 384);
        assert.deepEqual(settings.excludeGlobs, []);
        assert.equal(settings.modelEnabled, true);
        assert.equal(problems.length, 4);
        assert.match(problems.join('\n'), /sleepyCoder\.attempts must be a whole number of at least 1, not 0/);
        assert.match(problems.join('\n'), /sleepyCoder\.maxNewTokens .* not "500"; using 384/);
    });

    it('retention of zero days is allowed (keep for ever) but negative is not', () => {
        assert.equal(readSettings(config({ retentionDays: 0 }), defaults).settings.retentionDays, 0);
        assert.equal(readSettings(config({ retentionDays: -1 }), defaults).settings.retentionDays, 90);
    });

    it('the python setting is trimmed so a stray space does not count as a choice', () => {
        assert.equal(readSettings(config({ python: '  ' }), defaults).settings.python, '');
    });

    it('initialization options do not share arrays with the settings object', () => {
        const { settings } = readSettings(config({ excludeGlobs: ['a'] }), defaults);
        const options = toInitializationOptions(settings, ALONE);
        options.excludeGlobs.push('b');
        assert.deepEqual(settings.excludeGlobs, ['a']);
    });

    it('didChangeConfiguration carries the same options under the sleepyCoder section', () => {
        const settings: ExtensionSettings = { ...defaults, device: 'mps' };
        assert.deepEqual(toDidChangeConfigurationParams(settings, WITH_RUST_ANALYZER), {
            settings: { sleepyCoder: toInitializationOptions(settings, WITH_RUST_ANALYZER) },
        });
    });

    it('changing the interpreter restarts the server; other server settings are sent to it', () => {
        const changed = (...sections: string[]) => (section: string) => sections.includes(section);
        assert.equal(reactionToChange(changed('sleepyCoder.python')), 'restart');
        assert.equal(reactionToChange(changed('sleepyCoder.python', 'sleepyCoder.model')), 'restart');
        for (const key of SERVER_SETTING_KEYS) {
            assert.equal(reactionToChange(changed(`sleepyCoder.${key}`)), 'notify', key);
        }
        assert.equal(reactionToChange(changed('editor.fontSize', 'sleepyCoder.trace.server')), 'none');
    });
});
