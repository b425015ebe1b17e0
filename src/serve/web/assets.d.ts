// The chat page's files are imported as text (see ../page.ts).
declare module "*.css" {
  const text: string;
  export default text;
}
declare module "*/web/app.js" {
  const text: string;
  export default text;
}
