/**
 * The seed prototype's example dataset (`prepare_rag_dataset --mode example`): ten short general-AI
 * documents doc_001..doc_010 and five queries with their relevant documents. The ids, titles,
 * sources, metadata and query -> relevant_docs pairs follow the seed (reference/seed_inventory.md
 * section 4); the seed's exact sentences were not preserved, so the contents are rewritten in the
 * same 2-3 sentence style.
 */
import type { DocumentRow } from "./schema.ts";

export const EXAMPLE_DOCUMENTS: DocumentRow[] = [
  {
    id: "doc_001",
    title: "Introduction to Machine Learning",
    content:
      "Machine learning is a branch of artificial intelligence in which computers learn patterns from data instead of following hand-written rules. A model is trained on examples and then makes predictions on new data. Common kinds are supervised, unsupervised and reinforcement learning.",
    source: "educational",
    metadata: { topic: "AI", difficulty: "beginner" },
  },
  {
    id: "doc_002",
    title: "Deep Learning Fundamentals",
    content:
      "Deep learning uses neural networks with many layers to learn representations of data at increasing levels of abstraction. It powers modern image recognition, speech recognition and language models. Training deep networks needs large datasets and hardware such as GPUs.",
    source: "educational",
    metadata: { topic: "AI", difficulty: "intermediate" },
  },
  {
    id: "doc_003",
    title: "Natural Language Processing",
    content:
      "Natural language processing (NLP) is the field that lets computers read, understand and generate human language. Typical tasks are translation, summarization, question answering and sentiment analysis. Modern NLP relies on language models trained on large text corpora.",
    source: "educational",
    metadata: { topic: "NLP", difficulty: "intermediate" },
  },
  {
    id: "doc_004",
    title: "Transformer Architecture",
    content:
      "The transformer is a neural network architecture built on self-attention, introduced in the paper Attention Is All You Need in 2017. Each layer lets every token attend to every other token, followed by a feed-forward network, with residual connections and normalization. Transformers process whole sequences in parallel and are the basis of modern language models.",
    source: "technical",
    metadata: { topic: "NLP", difficulty: "advanced" },
  },
  {
    id: "doc_005",
    title: "State Space Models",
    content:
      "State space models such as Mamba process a sequence with a recurrent hidden state whose dynamics are learned, so their cost grows linearly with sequence length. Selective state space models make the state update depend on the input, letting the model decide what to remember. They are an efficient alternative or complement to transformer attention for long sequences.",
    source: "technical",
    metadata: { topic: "AI", difficulty: "advanced" },
  },
  {
    id: "doc_006",
    title: "Retrieval-Augmented Generation",
    content:
      "Retrieval-augmented generation (RAG) combines a retriever with a language model: relevant documents are fetched from a knowledge base and given to the model as context. The model then answers from those documents and can cite them. RAG reduces hallucination and lets a model use knowledge it was never trained on.",
    source: "technical",
    metadata: { topic: "NLP", difficulty: "advanced" },
  },
  {
    id: "doc_007",
    title: "Python Programming Basics",
    content:
      "Python is a high-level programming language known for its readable syntax and large ecosystem of libraries. It supports procedural, object-oriented and functional programming. Python is the most common language for data science and machine learning.",
    source: "programming",
    metadata: { topic: "programming", difficulty: "beginner" },
  },
  {
    id: "doc_008",
    title: "Neural Network Training",
    content:
      "Neural networks are trained by gradient descent: a loss function measures the error of the predictions, backpropagation computes the gradient of the loss with respect to every weight, and an optimizer such as SGD or Adam updates the weights. Training runs over many batches and epochs while validation data checks for overfitting. Learning rate schedules and regularization help training converge.",
    source: "educational",
    metadata: { topic: "AI", difficulty: "intermediate" },
  },
  {
    id: "doc_009",
    title: "Attention Mechanisms",
    content:
      "An attention mechanism lets a model weigh different parts of its input when producing each output. Queries are compared with keys to compute weights, which are used to average the values. Self-attention, where a sequence attends to itself, is the core operation of the transformer.",
    source: "technical",
    metadata: { topic: "AI", difficulty: "advanced" },
  },
  {
    id: "doc_010",
    title: "Data Preprocessing",
    content:
      "Data preprocessing prepares raw data for machine learning: cleaning errors and missing values, normalizing or scaling features, encoding categories and splitting data into training, validation and test sets. For text, preprocessing includes tokenization. Good preprocessing often matters as much as the choice of model.",
    source: "educational",
    metadata: { topic: "ML", difficulty: "beginner" },
  },
];

export interface SeedQuery {
  query: string;
  expected_answer: string;
  relevant_docs: string[];
}

export const EXAMPLE_QUERIES: SeedQuery[] = [
  {
    query: "What is machine learning?",
    expected_answer: "Machine learning is a branch of AI in which computers learn patterns from data to make predictions, rather than following hand-written rules.",
    relevant_docs: ["doc_001", "doc_008"],
  },
  {
    query: "How do transformers work?",
    expected_answer: "Transformers use self-attention so every token can attend to every other token, followed by feed-forward layers, processing the whole sequence in parallel.",
    relevant_docs: ["doc_004", "doc_009"],
  },
  {
    query: "What is RAG?",
    expected_answer: "Retrieval-augmented generation fetches relevant documents from a knowledge base and gives them to a language model, which answers from them.",
    relevant_docs: ["doc_006"],
  },
  {
    query: "What are state space models?",
    expected_answer: "State space models such as Mamba process sequences with a learned recurrent state, scaling linearly with length as an alternative to attention.",
    relevant_docs: ["doc_005", "doc_004"],
  },
  {
    query: "How do you train neural networks?",
    expected_answer: "By gradient descent: backpropagation computes the gradient of a loss and an optimizer such as Adam updates the weights over many batches.",
    relevant_docs: ["doc_008", "doc_002"],
  },
];
