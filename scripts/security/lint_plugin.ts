/**
 * Security lint rules for `deno lint` (SAST), after eslint-plugin-security and
 * eslint-plugin-no-unsanitized, loaded through `lint.plugins` in deno.json so `deno task test` and
 * `deno task security` both run them. A finding fails the run unless suppressed inline with a
 * reason: `// deno-lint-ignore bulwark-security/<rule> -- why` (`scripts/security/sast.ts`
 * refuses suppressions without one).
 *
 * Rules:
 * - `no-dynamic-code`: `globalThis.eval`, `new Function`, `Function()`, string timers (code from
 *   data; bare `eval` is deno lint's `no-eval`).
 * - `no-unsanitized-html`: `innerHTML`/`outerHTML` writes, `insertAdjacentHTML`, `document.write`.
 * - `no-non-literal-regexp`: `RegExp` built from a variable in service code (ReDoS, injection).
 * - `no-math-random`: `Math.random()` in service code (not a CSPRNG; use services/core/crypto.ts).
 * - `no-non-literal-command`: `Deno.Command` with a computed program in service code.
 *
 * @module
 */

const SERVICE_CODE = /\/(server|routes|middleware|services)\/|\/main\.ts$/;
const TOOLING = /\/(tests|scripts)\//;

/** The shipped service, not its tests and tools (those may spawn processes, build patterns). */
function isServiceCode(filename: string): boolean {
  return SERVICE_CODE.test(filename) && !TOOLING.test(filename);
}

function isLiteral(node: Deno.lint.Node | undefined): boolean {
  if (node === undefined) return true;
  return node.type === "Literal" ||
    (node.type === "TemplateLiteral" && node.expressions.length === 0);
}

function calleeName(node: Deno.lint.CallExpression | Deno.lint.NewExpression): string {
  const callee = node.callee;
  if (callee.type === "Identifier") return callee.name;
  if (callee.type === "MemberExpression" && callee.property.type === "Identifier") {
    const object = callee.object;
    const prefix = object.type === "Identifier"
      ? object.name
      : object.type === "MemberExpression" && object.property.type === "Identifier"
      ? `?.${object.property.name}`
      : "?";
    return `${prefix}.${callee.property.name}`;
  }
  return "";
}

const plugin: Deno.lint.Plugin = {
  name: "bulwark-security",
  rules: {
    "no-dynamic-code": {
      create(context) {
        const check = (node: Deno.lint.CallExpression | Deno.lint.NewExpression) => {
          const name = calleeName(node);
          // Bare eval() is deno lint's own no-eval; this catches the indirect forms it misses.
          if (
            /^((globalThis|window|self)\.eval|((globalThis|window|self)\.)?Function)$/.test(name)
          ) {
            context.report({ node, message: `${name}() runs code built from data` });
          }
          if (/^((globalThis|window|self)\.)?(setTimeout|setInterval)$/.test(name)) {
            const first = node.arguments[0];
            if (
              first !== undefined &&
              (first.type === "Literal" && typeof first.value === "string" ||
                first.type === "TemplateLiteral")
            ) {
              context.report({ node, message: `${name}() with a string evaluates it as code` });
            }
          }
        };
        return { CallExpression: check, NewExpression: check };
      },
    },
    "no-unsanitized-html": {
      create(context) {
        return {
          AssignmentExpression(node) {
            const left = node.left;
            if (
              left.type === "MemberExpression" && left.property.type === "Identifier" &&
              (left.property.name === "innerHTML" || left.property.name === "outerHTML") &&
              !isLiteral(node.right)
            ) {
              context.report({ node, message: `${left.property.name} set from a non-literal` });
            }
          },
          CallExpression(node) {
            const name = calleeName(node);
            if (
              /^(document\.(write|writeln)|.*\.insertAdjacentHTML)$/.test(name)
            ) {
              if (!node.arguments.every((a) => isLiteral(a))) {
                context.report({ node, message: `${name}() with a non-literal writes raw HTML` });
              }
            }
          },
        };
      },
    },
    "no-non-literal-regexp": {
      create(context) {
        if (!isServiceCode(context.filename)) return {};
        const check = (node: Deno.lint.CallExpression | Deno.lint.NewExpression) => {
          if (calleeName(node) === "RegExp" && !isLiteral(node.arguments[0])) {
            context.report({
              node,
              message: "RegExp built from a variable (ReDoS, pattern injection)",
            });
          }
        };
        return { CallExpression: check, NewExpression: check };
      },
    },
    "no-math-random": {
      create(context) {
        if (!isServiceCode(context.filename)) return {};
        return {
          CallExpression(node) {
            if (calleeName(node) === "Math.random") {
              context.report({
                node,
                message: "Math.random() is not a CSPRNG; use services/core/crypto.ts",
              });
            }
          },
        };
      },
    },
    "no-non-literal-command": {
      create(context) {
        if (!isServiceCode(context.filename)) return {};
        return {
          NewExpression(node) {
            if (calleeName(node) === "Deno.Command" && !isLiteral(node.arguments[0])) {
              context.report({ node, message: "Deno.Command with a computed program" });
            }
          },
        };
      },
    },
  },
};

// The lint plugin API loads a plugin from its default export (the one default export here).
export default plugin;
