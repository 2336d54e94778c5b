import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules', '.data', 'coverage', 'src/live/public/vendor'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // SQL lives in src/db: the rest of the code calls its functions, so every statement the
    // engine runs can be found, read and measured in one place.
    files: ['src/**/*.ts'],
    ignores: ['src/db/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.property.name='query']",
          message: 'Run SQL only in src/db/: add a function there and call it.',
        },
      ],
    },
  },
  {
    // The test kit's statements and the invariant oracle serve tests and the chaos suite only.
    files: ['src/**/*.ts'],
    ignores: ['src/testing.ts', 'src/testkit/**', 'src/db/testkit/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/db/testkit/*', '**/testkit/*'],
              message: 'Test-only code: production never imports it.',
            },
          ],
        },
      ],
    },
  },
  {
    // Tests read loosely typed JSON responses.
    files: ['test/**/*.ts', 'scripts/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // The entry point that checks the Node.js version before any TypeScript loads.
    files: ['src/cli/run.js'],
    languageOptions: { globals: { process: 'readonly' } },
  },
  {
    files: ['src/api/public/**/*.js'],
    languageOptions: {
      globals: {
        window: 'readonly',
        document: 'readonly',
        io: 'readonly',
        fetch: 'readonly',
        location: 'readonly',
        history: 'readonly',
        console: 'readonly',
        URLSearchParams: 'readonly',
      },
    },
  },
);
