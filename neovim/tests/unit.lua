-- Unit checks of the sleepy_coder module that need no server: option checking, client
-- configuration, crate-root search and status formatting. Run by tests/run.sh with any
-- Neovim >= 0.7; exits non-zero on the first failure.
local sc = require('sleepy_coder')
local failures, passed = {}, 0

local function test(name, fn)
  local ok, err = pcall(fn)
  if ok then
    passed = passed + 1
  else
    table.insert(failures, name .. ': ' .. tostring(err))
  end
end

local function eq(actual, expected)
  if not vim.deep_equal(actual, expected) then
    error(string.format('expected %s, got %s', vim.inspect(expected), vim.inspect(actual)), 2)
  end
end

local function errors_with(pattern, fn)
  local ok, err = pcall(fn)
  if ok or not tostring(err):match(pattern) then
    error(string.format('expected an error matching %q, got %s', pattern, tostring(err)), 2)
  end
end

test('the default command runs the server module with python3', function()
  eq(sc.resolve_options({}).cmd, { 'python3', '-m', 'lsp_server' })
end)

test('opts.python changes the interpreter and opts.cmd replaces the whole command', function()
  eq(sc.resolve_options({ python = '/venv/bin/python' }).cmd, { '/venv/bin/python', '-m', 'lsp_server' })
  eq(sc.resolve_options({ python = 'x', cmd = { 'sleepy-coder', 'serve' } }).cmd, { 'sleepy-coder', 'serve' })
end)

test('a misspelt setting is refused with the list of known names', function()
  errors_with('unknown setting "maxTokens" %(known: attempts, cargoNetwork, device', function()
    sc.resolve_options({ settings = { maxTokens = 10 } })
  end)
end)

test('a setting of the wrong type is refused by name', function()
  errors_with('setting attempts must be a number, not string', function()
    sc.resolve_options({ settings = { attempts = '3' } })
  end)
end)

test('a command that is not a list of strings is refused', function()
  errors_with('opts.cmd must be a non%-empty list of strings', function()
    sc.resolve_options({ cmd = 'python3 -m lsp_server' })
  end)
  errors_with('opts.on_attach must be a function', function()
    sc.resolve_options({ on_attach = 'no' })
  end)
end)

test('the settings go to the server as initializationOptions and under the sleepyCoder section', function()
  local config = sc.client_config(sc.resolve_options({ settings = { attempts = 1, modelEnabled = false } }))
  eq(config.name, 'sleepy_coder')
  eq(config.init_options, { attempts = 1, modelEnabled = false })
  eq(config.settings, { sleepyCoder = { attempts = 1, modelEnabled = false } })
  eq(type(config.handlers['sleepy-coder/adaptersChanged']), 'function')
  eq(type(config.commands['sleepy-coder.accept']), 'function')
end)

test('no settings are sent as JSON objects, not arrays', function()
  local config = sc.client_config(sc.resolve_options({}))
  eq(vim.json.encode(config.init_options), '{}')
  eq(vim.json.encode(config.settings), '{"sleepyCoder":{}}')
end)

test('the root is the nearest directory with a Cargo.toml', function()
  local base = vim.fn.tempname()
  vim.fn.mkdir(base .. '/ws/member/src/bin', 'p')
  vim.fn.writefile({ '[workspace]' }, base .. '/ws/Cargo.toml')
  vim.fn.writefile({ '[package]' }, base .. '/ws/member/Cargo.toml')
  vim.cmd('edit ' .. vim.fn.fnameescape(base .. '/ws/member/src/bin/tool.rs'))
  eq(sc.find_root(0), vim.fn.resolve(base .. '/ws/member'))
  vim.cmd('edit ' .. vim.fn.fnameescape(base .. '/loose.rs'))
  eq(sc.find_root(0), nil)
  eq(sc.attach(0), nil)
end)

test('the status answer is shown as model, learner, routes and records', function()
  local lines = sc.format_status({
    model = 'embedded:qwen2.5-coder-0.5b-instruct',
    modelState = 'loaded',
    routesWithAdapters = { 'borrow', 'type_mismatch' },
    learner = { state = 'idle', lastCycle = vim.NIL },
    store = { outcomes = 3, accepted = 2 },
  })
  eq(lines, {
    '# sleepy-coder',
    'Model: embedded:qwen2.5-coder-0.5b-instruct (loaded)',
    'Learner: idle; last cycle: never',
    'Routes with adapters: borrow, type_mismatch',
    'Records: accepted: 2, outcomes: 3',
  })
  eq(sc.format_status(vim.NIL)[1]:match('^sleepy%-coder status') ~= nil, true)
end)

test('setup registers the user commands and starts nothing', function()
  sc.setup({ cmd = { 'false' } })
  for _, name in ipairs({ 'SleepyCoderReject', 'SleepyCoderLearnNow', 'SleepyCoderStatus' }) do
    eq(vim.fn.exists(':' .. name), 2)
  end
  eq(sc.client_id(), nil)
end)

if #failures > 0 then
  io.stderr:write(table.concat(failures, '\n') .. '\n')
  vim.cmd('cquit 1')
end
io.stdout:write(string.format('sleepy_coder unit checks: %d passed (%s)\n', passed, vim.fn.execute('version'):match('NVIM v[%d%.]+')))
vim.cmd('quitall!')
