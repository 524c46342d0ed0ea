// The netdsl extension: starts `dsl lsp` (stdio) for .net files and netdsl YAML files.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const settings = vscode.workspace.getConfiguration("netdsl");
  const [command, ...args] = settings.get("server.command", ["dsl", "lsp"]);
  const serverOptions = { command, args, transport: TransportKind.stdio };
  const clientOptions = {
    documentSelector: [
      { scheme: "file", language: "netdsl" },
      { scheme: "file", language: "yaml", pattern: settings.get("yamlFiles", "**/*.net.{yaml,yml}") },
    ],
    initializationOptions: { debounceMs: settings.get("debounceMs", 50) },
  };
  client = new LanguageClient("netdsl", "netdsl", serverOptions, clientOptions);
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
