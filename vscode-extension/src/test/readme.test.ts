/**
 * The README is checked against package.json, so a renamed setting or command, a wrong type in
 * the settings.json example, or a default that changed fails CI instead of misleading a user.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import { parse, ParseError, printParseErrorCode } from 'jsonc-parser';
import * as path from 'path';
import { CONFIG_SECTION, EXTENSION_ROOT_DIR } from '../common/constants';
import { readSettings } from '../common/settings';

interface Property {
    readonly type?: string | string[];
    readonly default?: unknown;
    readonly enum?: unknown[];
    readonly minimum?: number;
    readonly exclusiveMinimum?: number;
    readonly items?: Property;
}

const manifest = JSON.parse(fs.readFileSync(path.join(EXTENSION_ROOT_DIR, 'package.json'), 'utf8')) as {
    contributes: {
        commands: { command: string; title: string }[];
        configuration: { properties: Record<string, Property> };
    };
};
const PROPERTIES = manifest.contributes.configuration.properties;
const COMMANDS = new Map(manifest.contributes.commands.map((c) => [c.command, c.title]));
const README = fs.readFileSync(path.join(EXTENSION_ROOT_DIR, 'README.md'), 'utf8');

/** The JSON type names of `value`, as JSON schema spells them (an integer is also a number). */
function jsonTypes(value: unknown): string[] {
    if (value === null) {
        return ['null'];
    }
    if (Array.isArray(value)) {
        return ['array'];
    }
    if (typeof value === 'number') {
        return Number.isInteger(value) ? ['integer', 'number'] : ['number'];
    }
    return [typeof value];
}

/** What is wrong with `value` for the contributed `property` (the parts of JSON schema package.json uses). */
function schemaProblems(value: unknown, property: Property, where: string): string[] {
    const problems: string[] = [];
    const declared = property.type === undefined ? [] : Array.isArray(property.type) ? property.type : [property.type];
    if (declared.length > 0 && !jsonTypes(value).some((type) => declared.includes(type))) {
        problems.push(`${where}: ${JSON.stringify(value)} is not of type ${declared.join(' | ')}`);
    }
    if (property.enum && !property.enum.some((option) => option === value)) {
        problems.push(`${where}: ${JSON.stringify(value)} is not one of ${JSON.stringify(property.enum)}`);
    }
    if (typeof value === 'number') {
        if (property.minimum !== undefined && value < property.minimum) {
            problems.push(`${where}: ${value} is below the minimum ${property.minimum}`);
        }
        if (property.exclusiveMinimum !== undefined && value <= property.exclusiveMinimum) {
            problems.push(`${where}: ${value} must be greater than ${property.exclusiveMinimum}`);
        }
    }
    if (Array.isArray(value) && property.items) {
        value.forEach((item, index) => problems.push(...schemaProblems(item, property.items!, `${where}[${index}]`)));
    }
    return problems;
}

/** Every ```json / ```jsonc block of the README, parsed as VS Code parses settings.json (comments, trailing commas). */
function jsonBlocks(markdown: string): { text: string; value: unknown }[] {
    const blocks: { text: string; value: unknown }[] = [];
    for (const match of markdown.matchAll(/^```jsonc?[ \t]*\n([\s\S]*?)^```/gm)) {
        const errors: ParseError[] = [];
        const value: unknown = parse(match[1], errors, { allowTrailingComma: true, disallowComments: false });
        assert.deepEqual(
            errors.map((error) => `${printParseErrorCode(error.error)} at offset ${error.offset}`),
            [],
            `README block does not parse:\n${match[1]}`,
        );
        blocks.push({ text: match[1], value });
    }
    return blocks;
}

/** `| a | b | c |` rows of the README whose first or second cell is a backticked `prefix...` name. */
function tableRows(markdown: string): string[][] {
    return markdown
        .split('\n')
        .filter((line) => /^\|.*\|\s*$/.test(line) && !/^\|\s*-/.test(line))
        .map((line) =>
            line
                .trim()
                .slice(1, -1)
                .split('|')
                .map((cell) => cell.trim()),
        );
}

function unquote(cell: string): string {
    const match = /^`(.*)`$/.exec(cell);
    return match ? match[1] : cell;
}

describe('README', () => {
    const blocks = jsonBlocks(README);

    it('has a settings.json example', () => {
        assert.ok(
            blocks.some((block) => Object.keys(block.value ?? {}).some((key) => key.startsWith(`${CONFIG_SECTION}.`))),
            'no ```jsonc block with sleepyCoder.* settings',
        );
    });

    it('every setting in its JSON examples exists in package.json with a value of the declared type', () => {
        for (const block of blocks) {
            assert.ok(block.value !== null && typeof block.value === 'object' && !Array.isArray(block.value), 'a settings object');
            for (const [key, value] of Object.entries(block.value as Record<string, unknown>)) {
                if (!key.startsWith(`${CONFIG_SECTION}.`)) {
                    continue; // another extension's setting: not ours to check
                }
                const property = PROPERTIES[key];
                assert.ok(property, `README sets ${key}, which package.json does not contribute`);
                assert.deepEqual(schemaProblems(value, property, key), []);
            }
        }
    });

    it('its JSON examples are settings the extension reads without a complaint', () => {
        for (const block of blocks) {
            const values = new Map(
                Object.entries(block.value as Record<string, unknown>)
                    .filter(([key]) => key.startsWith(`${CONFIG_SECTION}.`))
                    .map(([key, value]) => [key.slice(CONFIG_SECTION.length + 1), value]),
            );
            const { problems } = readSettings({ get: <T>(key: string) => values.get(key) as T | undefined });
            assert.deepEqual(problems, []);
        }
    });

    it('every sleepyCoder.* name it mentions is a contributed setting or command', () => {
        const mentioned = new Set([...README.matchAll(/\bsleepyCoder\.[A-Za-z]+(?:\.[A-Za-z]+)*/g)].map((match) => match[0]));
        assert.ok(mentioned.size > 0);
        for (const name of mentioned) {
            assert.ok(name in PROPERTIES || COMMANDS.has(name), `README mentions ${name}, which package.json does not contribute`);
        }
    });

    it('lists every contributed command with its palette title', () => {
        const rows = new Map(tableRows(README).map((cells) => [unquote(cells[1] ?? ''), cells[0]]));
        for (const [command, title] of COMMANDS) {
            assert.equal(rows.get(command), title, `README commands table: ${command}`);
        }
    });

    it('lists every contributed setting with its default', () => {
        const rows = new Map(tableRows(README).map((cells) => [unquote(cells[0]), unquote(cells[1] ?? '')]));
        for (const [key, property] of Object.entries(PROPERTIES)) {
            assert.ok(rows.has(key), `README settings table lacks ${key}`);
            const shown = rows.get(key)!;
            const expected = typeof property.default === 'string' && property.default !== '' ? property.default : JSON.stringify(property.default);
            assert.equal(shown, expected, `README default of ${key}`);
        }
    });
});
