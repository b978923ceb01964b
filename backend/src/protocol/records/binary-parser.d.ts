// binary-parser ships its typings for the CommonJS entry only; under NodeNext resolution the ESM entry
// (used at run time) has none. This points the ESM import at the same declarations.
declare module 'binary-parser' {
  export * from 'binary-parser/dist/binary_parser.js';
}
