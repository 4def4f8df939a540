// Lint: typescript-eslint's type-checked rules plus Pulumi's two Output-in-template-literal rules
// (an Output in a template literal renders as a warning text, not its value).
import js from "@eslint/js";
import pulumi from "@pulumi/eslint-plugin";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", "results/", "bench/out/", "tools/", "**/*.mjs"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { "@pulumi": pulumi },
    rules: {
      "@pulumi/no-output-in-template-literal": "error",
      "@pulumi/no-output-instance-in-template-literal": "error",
      curly: "error",
      eqeqeq: "error",
      "default-case": "error",
      "prefer-const": "error",
      "@typescript-eslint/no-floating-promises": "error",
    },
  },
  {
    // Size limits: a file stays under 400 lines and a function (constructors included) under 120,
    // every line counted (blank and comment lines too).
    files: ["infra/**/*.ts", "scripts/**/*.ts", "test/**/*.ts", "bench/**/*.ts"],
    rules: {
      "max-lines": ["error", { max: 400, skipBlankLines: false, skipComments: false }],
      "max-lines-per-function": ["error", { max: 120, skipBlankLines: false, skipComments: false, IIFEs: true }],
    },
  },
  {
    // Tests import the program after mocks are set, which needs dynamic `import()` and `require`.
    files: ["test/**/*.ts"],
    rules: {
      "@typescript-eslint/no-require-imports": "off",
    },
  },
);
