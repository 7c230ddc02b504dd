-- sleepy-coder for Neovim: registers the sleepy-coder language server for Rust buffers.
--
-- Neovim 0.11+ gets `vim.lsp.config` + `vim.lsp.enable`; 0.7-0.10 get a FileType autocmd that
-- starts one client per crate root with `vim.lsp.start_client` (0.7 has no `vim.lsp.start`).
-- Fixes are ordinary code actions: applying one runs its edit, then its `sleepy-coder.accept`
-- command, which both paths do through the core code-action UI.
--
-- `setup` only registers the client (and, unless `commands = false`, the user commands), so
-- tests and plugin managers can call it with any command line.

local M = {}

local NAME = 'sleepy_coder'
local SECTION = 'sleepyCoder'
local ADAPTERS_CHANGED = 'sleepy-coder/adaptersChanged'
local SERVER_COMMANDS = {
  accept = 'sleepy-coder.accept',
  reject = 'sleepy-coder.reject',
  learn_now = 'sleepy-coder.learnNow',
  status = 'sleepy-coder.status',
  forget_data = 'sleepy-coder.forgetData',
  open_report = 'sleepy-coder.openReport',
}
-- The settings the server understands (learner/config.py), as the editor spells them.
local KNOWN_SETTINGS = {
  model = 'string',
  device = 'string',
  maxNewTokens = 'number',
  attempts = 'number',
  modelEnabled = 'boolean',
  publishDiagnostics = 'boolean',
  learningEnabled = 'boolean',
  retentionDays = 'number',
  excludeGlobs = 'table',
  trusted = 'boolean',
  cargoNetwork = 'boolean',
}

M.defaults = {
  -- Full command line; when nil it is { python, '-m', module }.
  cmd = nil,
  python = 'python3',
  module = 'lsp_server',
  filetypes = { 'rust' },
  -- The client's root is the directory of the nearest of these, searching upwards.
  root_markers = { 'Cargo.toml' },
  -- Server settings (names as above); only the ones given are sent, the server has the defaults.
  settings = {},
  -- function(client, bufnr), called after sleepy-coder attaches to a buffer.
  on_attach = nil,
  capabilities = nil,
  -- function(params), called on `sleepy-coder/adaptersChanged` (after the notification).
  on_adapters_changed = nil,
  -- Show a vim.notify message when the learner swapped in new adapters.
  notify = true,
  -- Create the :SleepyCoder* user commands.
  commands = true,
}

-- The only mutable state: the resolved options, and the fix id remembered for :SleepyCoderReject.
local state = { opts = nil, last_fix_id = nil, group = nil }

local uv = vim.uv or vim.loop
local has_011 = vim.fn.has('nvim-0.11') == 1 and vim.lsp.config ~= nil and vim.lsp.enable ~= nil

local function notify(message, level)
  vim.notify('sleepy-coder: ' .. message, level or vim.log.levels.INFO)
end

---------------------------------------------------------------------------------------------------
-- Options
---------------------------------------------------------------------------------------------------

local function fail(message)
  error("sleepy_coder.setup: " .. message, 0)
end

local function is_list_of_strings(value)
  if type(value) ~= 'table' then
    return false
  end
  for key, item in pairs(value) do
    if type(key) ~= 'number' or type(item) ~= 'string' then
      return false
    end
  end
  return #value > 0
end

local function check_settings(settings)
  if type(settings) ~= 'table' then
    fail('opts.settings must be a table of sleepyCoder settings')
  end
  for key, value in pairs(settings) do
    local kind = KNOWN_SETTINGS[key]
    if kind == nil then
      local names = vim.tbl_keys(KNOWN_SETTINGS)
      table.sort(names)
      fail(string.format('unknown setting %q (known: %s)', tostring(key), table.concat(names, ', ')))
    end
    if type(value) ~= kind then
      fail(string.format('setting %s must be a %s, not %s', key, kind, type(value)))
    end
  end
end

--- Merges `opts` over the defaults and checks them; errors name the bad option.
function M.resolve_options(opts)
  opts = opts or {}
  if type(opts) ~= 'table' then
    fail('opts must be a table')
  end
  local resolved = vim.tbl_extend('force', vim.deepcopy(M.defaults), opts)
  resolved.settings = vim.deepcopy(opts.settings or {})
  if resolved.cmd == nil then
    if type(resolved.python) ~= 'string' or resolved.python == '' then
      fail('opts.python must be a non-empty string')
    end
    resolved.cmd = { vim.fn.expand(resolved.python), '-m', resolved.module }
  end
  if not is_list_of_strings(resolved.cmd) then
    fail('opts.cmd must be a non-empty list of strings, e.g. { "python3", "-m", "lsp_server" }')
  end
  if not is_list_of_strings(resolved.filetypes) then
    fail('opts.filetypes must be a non-empty list of strings')
  end
  if not is_list_of_strings(resolved.root_markers) then
    fail('opts.root_markers must be a non-empty list of file names')
  end
  for _, key in ipairs({ 'on_attach', 'on_adapters_changed' }) do
    if resolved[key] ~= nil and type(resolved[key]) ~= 'function' then
      fail('opts.' .. key .. ' must be a function')
    end
  end
  check_settings(resolved.settings)
  return resolved
end

-- An empty Lua table encodes as a JSON array; the server needs objects.
local function as_object(tbl)
  if next(tbl) == nil then
    return vim.empty_dict()
  end
  return tbl
end

---------------------------------------------------------------------------------------------------
-- Clients
---------------------------------------------------------------------------------------------------

-- 0.11 prefers method calls (client:request); 0.7-0.10 only have fields (client.request).
local function client_request(client, method, params, handler, bufnr)
  if has_011 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

local function client_notify(client, method, params)
  if has_011 then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

local function all_clients()
  if vim.lsp.get_clients then
    return vim.lsp.get_clients({ name = NAME })
  end
  local found = {}
  for _, client in ipairs(vim.lsp.get_active_clients()) do
    if client.name == NAME then
      table.insert(found, client)
    end
  end
  return found
end

--- The sleepy-coder client attached to `bufnr` (default: current buffer), or nil.
function M.client(bufnr)
  if bufnr == nil or bufnr == 0 then
    bufnr = vim.api.nvim_get_current_buf()
  end
  for _, client in ipairs(all_clients()) do
    if vim.lsp.buf_is_attached(bufnr, client.id) then
      return client
    end
  end
  return nil
end

--- The id of the sleepy-coder client attached to `bufnr`, else of any running one, else nil.
function M.client_id(bufnr)
  local client = M.client(bufnr) or all_clients()[1]
  return client and client.id or nil
end

--- Directory of the nearest root marker above the buffer's file, or nil (then no client starts).
function M.find_root(bufnr, markers)
  markers = markers or (state.opts and state.opts.root_markers) or M.defaults.root_markers
  local name = vim.api.nvim_buf_get_name(bufnr)
  if name == '' then
    return nil
  end
  local dir = vim.fn.fnamemodify(name, ':p:h')
  while dir and dir ~= '' do
    for _, marker in ipairs(markers) do
      if uv.fs_stat(dir .. '/' .. marker) then
        return dir
      end
    end
    local parent = vim.fn.fnamemodify(dir, ':h')
    if parent == dir then
      return nil
    end
    dir = parent
  end
  return nil
end

local function on_adapters_changed(_, params)
  params = params or {}
  local opts = state.opts or M.defaults
  if opts.notify then
    local message = params.message
    if type(message) ~= 'string' or message == '' then
      local routes = type(params.routes) == 'table' and table.concat(params.routes, ', ') or ''
      message = 'new adapters for ' .. (routes ~= '' and routes or 'no routes')
    end
    notify(message)
  end
  if opts.on_adapters_changed then
    opts.on_adapters_changed(params)
  end
  return vim.NIL
end

--- Runs a server command (workspace/executeCommand); `callback(err, result)` gets the answer.
function M.execute(command, arguments, callback, bufnr)
  callback = callback or function() end
  local client = M.client(bufnr) or all_clients()[1]
  if not client then
    callback({ message = 'the sleepy-coder server is not running (open a Rust file in a Cargo crate)' }, nil)
    return false
  end
  local params = { command = command, arguments = arguments or {} }
  client_request(client, 'workspace/executeCommand', params, function(err, result)
    callback(err, result)
  end, bufnr or vim.api.nvim_get_current_buf())
  return true
end

-- Client-side handler for the command attached to every fix: remember the fix id (so
-- :SleepyCoderReject can still reject it after it was applied) and forward it to the server.
local function accept_command(command, ctx)
  local args = command.arguments or {}
  state.last_fix_id = args[1]
  M.execute(command.command, args, function(err)
    if err then
      notify('accepting the fix failed: ' .. tostring(err.message or err), vim.log.levels.ERROR)
    end
  end, ctx and ctx.bufnr)
end

--- The client configuration shared by both registration paths (no root_dir).
function M.client_config(opts)
  opts = opts or state.opts or M.resolve_options({})
  return {
    name = NAME,
    cmd = vim.deepcopy(opts.cmd),
    filetypes = vim.deepcopy(opts.filetypes),
    init_options = as_object(vim.deepcopy(opts.settings)),
    settings = { [SECTION] = as_object(vim.deepcopy(opts.settings)) },
    capabilities = opts.capabilities,
    handlers = { [ADAPTERS_CHANGED] = on_adapters_changed },
    commands = { [SERVER_COMMANDS.accept] = accept_command },
    on_attach = opts.on_attach,
  }
end

---------------------------------------------------------------------------------------------------
-- Registration
---------------------------------------------------------------------------------------------------

local function register_011(opts)
  local config = M.client_config(opts)
  -- A function root_dir starts the client only inside a crate (no single-file mode).
  config.root_dir = function(bufnr, on_dir)
    local root = M.find_root(bufnr, opts.root_markers)
    if root then
      on_dir(root)
    end
  end
  vim.lsp.config(NAME, config)
  vim.lsp.enable(NAME)
end

-- 0.7-0.10: one client per root, started on demand and attached to each buffer of the crate.
local function attach_legacy(bufnr, opts)
  local root = M.find_root(bufnr, opts.root_markers)
  if not root then
    return nil
  end
  for _, client in ipairs(all_clients()) do
    if client.config.root_dir == root and not client.is_stopped() then
      vim.lsp.buf_attach_client(bufnr, client.id)
      return client.id
    end
  end
  local config = M.client_config(opts)
  config.root_dir = root
  config.workspace_folders = { { uri = vim.uri_from_fname(root), name = root } }
  local id = vim.lsp.start_client(config)
  if id then
    vim.lsp.buf_attach_client(bufnr, id)
  else
    notify('could not start ' .. table.concat(opts.cmd, ' '), vim.log.levels.ERROR)
  end
  return id
end

local function register_legacy(opts)
  state.group = vim.api.nvim_create_augroup('sleepy_coder', { clear = true })
  vim.api.nvim_create_autocmd('FileType', {
    group = state.group,
    pattern = opts.filetypes,
    callback = function(args)
      attach_legacy(args.buf, opts)
    end,
  })
  -- Buffers opened before setup (lazy loading on `ft = 'rust'`) get attached too.
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) and vim.tbl_contains(opts.filetypes, vim.bo[bufnr].filetype) then
      attach_legacy(bufnr, opts)
    end
  end
end

--- Attaches sleepy-coder to `bufnr` (default: current) whatever its filetype, if it is in a crate.
--- Returns the client id, or nil outside a crate. Useful for tests and custom autocmds.
function M.attach(bufnr)
  if bufnr == nil or bufnr == 0 then
    bufnr = vim.api.nvim_get_current_buf()
  end
  local opts = state.opts or M.resolve_options({})
  if has_011 then
    local root = M.find_root(bufnr, opts.root_markers)
    if not root then
      return nil
    end
    local config = M.client_config(opts)
    config.root_dir = root
    return vim.lsp.start(config, { bufnr = bufnr })
  end
  return attach_legacy(bufnr, opts)
end

---------------------------------------------------------------------------------------------------
-- Commands
---------------------------------------------------------------------------------------------------

local function line_diagnostics(bufnr, row)
  local diagnostics = {}
  for _, d in ipairs(vim.diagnostic.get(bufnr, { lnum = row })) do
    local lsp = (d.user_data and d.user_data.lsp) or {}
    if lsp.range then
      table.insert(diagnostics, lsp) -- 0.10+ keeps the whole LSP diagnostic
    else
      table.insert(diagnostics, {
        range = {
          start = { line = d.lnum, character = d.col },
          ['end'] = { line = d.end_lnum or d.lnum, character = d.end_col or d.col },
        },
        severity = d.severity,
        message = d.message,
        source = d.source,
        code = d.code or lsp.code,
        data = lsp.data,
      })
    end
  end
  return diagnostics
end

local function run_reject(client, action, bufnr)
  if action.edit then
    vim.lsp.util.apply_workspace_edit(action.edit, client.offset_encoding)
  end
  local command = type(action.command) == 'table' and action.command or action
  if type(command.command) ~= 'string' then
    return
  end
  local fix_id = (command.arguments or {})[1]
  M.execute(command.command, command.arguments, function(err)
    if err then
      notify('rejecting failed: ' .. tostring(err.message or err), vim.log.levels.ERROR)
    else
      if fix_id ~= nil and fix_id == state.last_fix_id then
        state.last_fix_id = nil
      end
      notify('fix rejected; thank you')
    end
  end, bufnr)
end

local function reject_last(bufnr)
  if state.last_fix_id == nil then
    notify('no sleepy-coder fix to reject here', vim.log.levels.WARN)
    return
  end
  run_reject(M.client(bufnr) or all_clients()[1], {
    command = { command = SERVER_COMMANDS.reject, arguments = { state.last_fix_id } },
  }, bufnr)
end

--- Rejects the sleepy-coder fix offered at the cursor ("Reject this fix"); without one, rejects
--- the last fix applied in this session.
function M.reject()
  local bufnr = vim.api.nvim_get_current_buf()
  local client = M.client(bufnr)
  if not client then
    reject_last(bufnr)
    return
  end
  local params = vim.lsp.util.make_range_params(0, client.offset_encoding)
  local row = vim.api.nvim_win_get_cursor(0)[1] - 1
  params.context = { diagnostics = line_diagnostics(bufnr, row), only = { 'quickfix' } }
  client_request(client, 'textDocument/codeAction', params, function(err, actions)
    if err then
      notify('code actions failed: ' .. tostring(err.message), vim.log.levels.ERROR)
      return
    end
    local rejects = {}
    for _, action in ipairs(actions or {}) do
      if type(action.title) == 'string' and action.title:match('^Reject') then
        table.insert(rejects, action)
      end
    end
    if #rejects == 0 then
      reject_last(bufnr)
    elseif #rejects == 1 then
      run_reject(client, rejects[1], bufnr)
    else
      vim.ui.select(rejects, {
        prompt = 'Reject which fix?',
        format_item = function(action)
          return action.title
        end,
      }, function(choice)
        if choice then
          run_reject(client, choice, bufnr)
        end
      end)
    end
  end, bufnr)
end

--- Lines describing a `sleepy-coder.status` answer.
function M.format_status(status)
  if type(status) == 'string' then
    local ok, decoded = pcall(vim.json.decode, status)
    status = ok and decoded or status
  end
  if type(status) ~= 'table' then
    return { 'sleepy-coder status: ' .. vim.inspect(status) }
  end
  local learner = type(status.learner) == 'table' and status.learner or {}
  local routes = type(status.routesWithAdapters) == 'table' and status.routesWithAdapters or {}
  local store = {}
  for key, value in pairs(type(status.store) == 'table' and status.store or {}) do
    table.insert(store, key .. ': ' .. tostring(value))
  end
  table.sort(store)
  local function text(value, fallback)
    return (value == nil or value == vim.NIL) and fallback or tostring(value)
  end
  return {
    '# sleepy-coder',
    'Model: ' .. text(status.model, 'unknown') .. ' (' .. text(status.modelState, 'unknown') .. ')',
    'Learner: ' .. text(learner.state, 'unknown') .. '; last cycle: ' .. text(learner.lastCycle, 'never'),
    'Routes with adapters: ' .. (#routes > 0 and table.concat(routes, ', ') or 'none yet'),
    'Records: ' .. (#store > 0 and table.concat(store, ', ') or 'none'),
  }
end

--- Asks the server for its status; `callback(err, status)`, or a floating window when omitted.
function M.status(callback)
  M.execute(SERVER_COMMANDS.status, {}, function(err, result)
    if callback then
      callback(err, result)
    elseif err then
      notify(tostring(err.message or err), vim.log.levels.ERROR)
    else
      vim.lsp.util.open_floating_preview(M.format_status(result), 'markdown', { border = 'rounded' })
    end
  end)
end

local function report_message(err, result)
  if err then
    notify(tostring(err.message or err), vim.log.levels.ERROR)
  elseif type(result) == 'string' then
    notify(result)
  elseif result ~= nil and result ~= vim.NIL then
    notify(vim.inspect(result))
  end
end

function M.learn_now()
  M.execute(SERVER_COMMANDS.learn_now, {}, report_message)
end

function M.open_report()
  M.execute(SERVER_COMMANDS.open_report, {}, function(err, result)
    if err then
      report_message(err)
    elseif type(result) == 'table' and type(result.path) == 'string' and result.path ~= '' then
      vim.cmd('edit ' .. vim.fn.fnameescape(result.path))
    else
      notify('no report yet: one is written after the first learning cycle')
    end
  end)
end

function M.forget_data()
  local answer = vim.fn.confirm('Forget all sleepy-coder data (recorded outcomes and training data)?', '&Forget\n&Cancel', 2)
  if answer ~= 1 then
    return
  end
  M.execute(SERVER_COMMANDS.forget_data, {}, function(err, result)
    if err then
      report_message(err)
    else
      notify('forgot your data: ' .. vim.inspect(result))
    end
  end)
end

--- Sends new settings to the running servers (workspace/didChangeConfiguration).
function M.update_settings(settings)
  check_settings(settings)
  if state.opts then
    state.opts.settings = vim.deepcopy(settings)
  end
  for _, client in ipairs(all_clients()) do
    client.config.settings = { [SECTION] = as_object(vim.deepcopy(settings)) }
    client_notify(client, 'workspace/didChangeConfiguration', { settings = client.config.settings })
  end
end

local function create_commands()
  local create = vim.api.nvim_create_user_command
  create('SleepyCoderReject', M.reject, { desc = 'Reject the sleepy-coder fix at the cursor (or the last applied one)' })
  create('SleepyCoderLearnNow', M.learn_now, { desc = 'Start a sleepy-coder learning cycle now' })
  create('SleepyCoderStatus', function()
    M.status()
  end, { desc = 'Show the sleepy-coder model and learner status' })
  create('SleepyCoderOpenReport', M.open_report, { desc = 'Open the latest sleepy-coder report' })
  create('SleepyCoderForgetData', M.forget_data, { desc = 'Delete your sleepy-coder records (asks first)' })
end

---------------------------------------------------------------------------------------------------
-- Entry point
---------------------------------------------------------------------------------------------------

--- Registers the sleepy-coder client for Rust buffers. Calling it again replaces the options.
function M.setup(opts)
  local resolved = M.resolve_options(opts)
  state.opts = resolved
  if has_011 then
    register_011(resolved)
  else
    register_legacy(resolved)
  end
  if resolved.commands then
    create_commands()
  end
end

--- For tests: the fix id :SleepyCoderReject falls back to.
function M.last_fix_id()
  return state.last_fix_id
end

return M
